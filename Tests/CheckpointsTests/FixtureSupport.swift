import Foundation

/// Locates committed fixture files (Tests/CheckpointsTests/Fixtures, copied into the test bundle).
enum Fixtures {
    static var root: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }
}
