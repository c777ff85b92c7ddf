// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "weights",
    products: [
        .library(name: "Weights", targets: ["Weights"]),
        .executable(name: "weights", targets: ["weights"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C shims: the only targets that import C libraries.
        .systemLibrary(name: "CZip", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),

        // Declarations only: OpenBLAS is opened at run time on first use (Kernels/Gemm.swift), not linked.
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),

        // C kernels for instructions Swift cannot name (AVX-512 GEMM); its AVX-512 functions carry a target
        // attribute and are only called after a CPU check, so the package builds and runs on any x86-64.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        .target(name: "TensorCore", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Checkpoints", dependencies: ["TensorCore", "CZip", "CHDF5"]),
        .target(name: "WeightMapping", dependencies: ["TensorCore", "Checkpoints", "Yams"]),
        .target(name: "Models", dependencies: ["TensorCore"]),
        .target(name: "Verification", dependencies: ["TensorCore", "Checkpoints", "WeightMapping", "Models"]),
        // The library API: re-exports the modules above and joins models to the loader.
        .target(name: "Weights", dependencies: ["TensorCore", "Checkpoints", "WeightMapping", "Models", "Verification"]),
        .target(name: "WeightsCLI", dependencies: [
            "Weights",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "weights", dependencies: ["WeightsCLI"]),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "Checkpoints"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TensorCore"], exclude: ["FuzzCrashes"], resources: [.copy("Fixtures")]),
        .testTarget(name: "WeightMappingTests", dependencies: ["WeightMapping", "Checkpoints", "TensorCore"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TensorCore", "Checkpoints"], resources: [.copy("Fixtures")]),
        .testTarget(name: "VerificationTests", dependencies: ["Weights"], exclude: ["Fixtures"]),
        .testTarget(name: "WeightsCLITests", dependencies: ["WeightsCLI", "Checkpoints", "TensorCore"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
