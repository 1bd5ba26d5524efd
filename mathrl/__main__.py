from mathrl.cli import main

main()
