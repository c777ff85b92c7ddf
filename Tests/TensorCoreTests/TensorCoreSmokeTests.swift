import XCTest
@testable import TensorCore
