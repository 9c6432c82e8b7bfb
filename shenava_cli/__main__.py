from shenava_cli.app import main

main()
