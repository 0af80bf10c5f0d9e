from edge.app import main

main()
