import XCTest
@testable import WeightsCLI
