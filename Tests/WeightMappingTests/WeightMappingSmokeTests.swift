import XCTest
@testable import WeightMapping
