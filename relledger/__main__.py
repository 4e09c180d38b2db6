from relledger.cli import main

main()
