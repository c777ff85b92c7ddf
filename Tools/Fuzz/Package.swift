// swift-tools-version:6.0
// libFuzzer harness for the checkpoint readers. Built separately from the root package, with
// `--sanitize=fuzzer --sanitize=address`; see README.md and run.sh.
import PackageDescription

let package = Package(
    name: "WeightsFuzz",
    dependencies: [
        .package(name: "weights", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "CheckpointFuzz",
            dependencies: [.product(name: "Weights", package: "weights")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
