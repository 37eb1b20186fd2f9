import LayerSplitCLI

LayerSplitCommand.main()
