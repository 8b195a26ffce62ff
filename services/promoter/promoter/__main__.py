from promoter.main import main

main()
