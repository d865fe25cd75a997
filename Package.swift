// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "airavata-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "airavata-gateway", targets: ["airavata-gateway"]),
        .library(name: "AiravataClient", targets: ["AiravataClient"]),
        .executable(name: "airavata-load", targets: ["airavata-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Micro-benchmarks only (Benchmarks/). The trait list leaves out the default
        // RuntimeInterposer trait, whose package is not in the offline mirror; malloc counts
        // come from MallocInterposer.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "AiravataRedis",
            dependencies: [
                "AiravataProtocol",
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataProtocol",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataCore",
            dependencies: [
                "AiravataProtocol",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataCluster",
            dependencies: [
                "AiravataCore",
                "AiravataProtocol",
                "AiravataRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataServer",
            dependencies: [
                "AiravataProtocol",
                "AiravataCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataClient",
            dependencies: [
                "AiravataProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "airavata-gateway",
            dependencies: [
                "AiravataProtocol",
                "AiravataCore",
                "AiravataServer",
                "AiravataClient",
                "AiravataCluster",
                "AiravataRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "airavata-load",
            dependencies: [
                "AiravataProtocol",
                "AiravataCore",
                "AiravataClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AiravataTestSupport",
            dependencies: [
                "AiravataProtocol",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/AiravataTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AiravataRedisTests",
            dependencies: [
                "AiravataRedis",
                "AiravataTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AiravataClusterTests",
            dependencies: [
                "AiravataTestSupport", "AiravataProtocol", "AiravataCore", "AiravataCluster", "AiravataRedis",
                "AiravataClient", "airavata-gateway", "airavata-load",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AiravataProtocolTests",
            dependencies: ["AiravataProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AiravataCoreTests",
            dependencies: ["AiravataCore", "AiravataProtocol", .product(name: "JWTKit", package: "jwt-kit")],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AiravataServerTests",
            dependencies: [
                "AiravataServer", "AiravataCore", "AiravataProtocol", "AiravataClient", "airavata-gateway",
                "AiravataTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `swift package benchmark` finds it under Benchmarks/; in this package so that it
        // reaches our `package` APIs. `bash bench/micro.sh` runs it.
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                "AiravataProtocol",
                "AiravataCore",
                "AiravataCluster",
                "AiravataServer",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
