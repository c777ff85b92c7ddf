import XCTest
@testable import Models
