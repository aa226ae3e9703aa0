from mutualaid.cli.app import main

main()
