import WeightsCLI

WeightsCommand.runMain()
