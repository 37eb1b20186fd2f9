import LayerSplitCLI

LayerSplitCommand.runMain()
