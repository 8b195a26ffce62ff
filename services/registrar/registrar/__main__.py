from registrar.main import main

main()
