// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LayerSplit",
    platforms: [.macOS(.v15)],
    // MARK: - Public API
    products: [
        .executable(name: "layersplit", targets: ["layersplit"]),
        .library(name: "LayerSplitEngine", targets: ["LayerSplitEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // MARK: - System libraries (module map + shim header; no Swift API of their own)
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        // MARK: - Library modules
        .target(name: "LayerSplitEngine", dependencies: ["CBLAS"]),
        .target(name: "LayerSplitStore", dependencies: ["CHDF5", "LayerSplitEngine", "LayerSplitSearch"]),
        .target(
            name: "LayerSplitData",
            dependencies: ["LayerSplitEngine", "LayerSplitStore", "CZlib", .product(name: "Yams", package: "Yams")]),
        .target(name: "LayerSplitSearch", dependencies: ["LayerSplitEngine"]),
        .target(name: "LayerSplitReport", dependencies: ["LayerSplitSearch", "LayerSplitEngine"]),
        .target(
            name: "LayerSplitRun",
            dependencies: [
                "LayerSplitEngine", "LayerSplitData", "LayerSplitStore", "LayerSplitSearch", "LayerSplitReport",
                .product(name: "Yams", package: "Yams"),
            ]),
        .target(
            name: "LayerSplitCLI",
            dependencies: [
                "LayerSplitEngine", "LayerSplitData", "LayerSplitStore", "LayerSplitSearch", "LayerSplitReport", "LayerSplitRun",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "layersplit", dependencies: ["LayerSplitCLI"]),

        // MARK: - Tests
        .target(name: "_MallocCounter", path: "Sources/_MallocCounter"),
        .target(name: "_TestSupport", path: "Sources/_TestSupport"),
        .testTarget(name: "LayerSplitEngineTests", dependencies: ["LayerSplitEngine", "_MallocCounter"]),
        .testTarget(
            name: "LayerSplitStoreTests", dependencies: ["LayerSplitStore", "LayerSplitEngine", "LayerSplitSearch", "_TestSupport"]),
        .testTarget(name: "LayerSplitDataTests", dependencies: ["LayerSplitData", "LayerSplitEngine", "LayerSplitStore"]),
        .testTarget(name: "LayerSplitSearchTests", dependencies: ["LayerSplitSearch", "LayerSplitEngine"]),
        .testTarget(name: "LayerSplitReportTests", dependencies: ["LayerSplitReport", "LayerSplitSearch", "LayerSplitEngine"]),
        .testTarget(
            name: "LayerSplitCLITests", dependencies: ["LayerSplitCLI", "LayerSplitEngine", "LayerSplitRun", "_TestSupport"]),
    ]
)
