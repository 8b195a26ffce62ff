from auditor.main import main

main()
