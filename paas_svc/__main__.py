from paas_svc.cli.main import main

main()
