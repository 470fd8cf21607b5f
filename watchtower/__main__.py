from watchtower.cli.app import main

main()
