import XCTest
@testable import Verification
