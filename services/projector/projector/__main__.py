from projector.main import main

main()
