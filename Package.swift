// swift-tools-version:6.0
import PackageDescription

// Layers (dependencies point downward only):
//   0 pure     NetworkPrimitives, TFTPWire, DHCPWire
//   1 domain   ProvisioningModel, BootPolicy, BootEnvRendering
//   2 adapter  SQLiteInventory, HTTPAPI, TFTPService, DHCPService, FreeIPMIPower (over CFreeIPMI, CIPMIMonitoring),
//              BootMediaImport (over CCurl, CArchive)
//   3 root     Appliance, anvil
//   Lab (Foundation only): namespaces, child processes, QEMU machines, ipmi_sim BMCs, a rack around
//   `anvil serve`; shared by `anvil lab` and the end-to-end tests (ApplianceTesting re-exports it).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "anvil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "anvil", targets: ["anvil"]),
        .executable(name: "anvil-bench", targets: ["AnvilBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/stencilproject/Stencil", from: "0.15.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // 0: pure values
        .target(name: "NetworkPrimitives", swiftSettings: swiftSettings),
        .target(
            name: "TFTPWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DHCPWire",
            dependencies: ["NetworkPrimitives", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),

        // 1: domain (no I/O)
        .target(
            name: "ProvisioningModel",
            dependencies: [
                "NetworkPrimitives",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BootPolicy",
            dependencies: ["DHCPWire", "ProvisioningModel", "NetworkPrimitives"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BootEnvRendering",
            dependencies: [
                "ProvisioningModel", "NetworkPrimitives", .product(name: "Yams", package: "Yams"),
                .product(name: "Stencil", package: "Stencil"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "WorkflowEngine",
            dependencies: ["ProvisioningModel"],
            swiftSettings: swiftSettings
        ),

        // 2: adapters
        .target(
            name: "SQLiteInventory",
            dependencies: ["ProvisioningModel", "NetworkPrimitives", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HTTPAPI",
            dependencies: [
                "ProvisioningModel", "NetworkPrimitives", "BootEnvRendering", "WorkflowEngine",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The boot plane's /files/ handler sits in the HTTP/1 pipeline and sends FileRegions.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "DatagramSockets",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TFTPService",
            dependencies: [
                "TFTPWire", "ProvisioningModel", "DatagramSockets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "DHCPService",
            dependencies: [
                "BootPolicy", "DHCPWire", "ProvisioningModel", "NetworkPrimitives", "DatagramSockets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        .systemLibrary(name: "CFreeIPMI", pkgConfig: "libfreeipmi", providers: [.apt(["libfreeipmi-dev"])]),
        .systemLibrary(name: "CIPMIMonitoring", pkgConfig: "libipmimonitoring", providers: [.apt(["libipmimonitoring-dev"])]),
        .target(
            name: "FreeIPMIPower",
            dependencies: ["ProvisioningModel", "CFreeIPMI", "CIPMIMonitoring"],
            swiftSettings: swiftSettings
        ),

        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "BootMediaImport",
            dependencies: ["ProvisioningModel", "CCurl", "CArchive", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // 3: root
        .target(
            name: "Appliance",
            dependencies: [
                "ProvisioningModel", "BootEnvRendering", "BootPolicy", "SQLiteInventory", "HTTPAPI", "TFTPService", "DHCPService",
                "FreeIPMIPower",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "Lab", swiftSettings: swiftSettings),
        .executableTarget(
            name: "anvil",
            dependencies: [
                "Appliance", "Lab", "ProvisioningModel", "BootEnvRendering", "BootMediaImport", "DHCPWire", "DatagramSockets",
                "NetworkPrimitives",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AnvilBenchmarks",
            dependencies: [
                "ApplianceTesting", "FreeIPMIPower", "ProvisioningModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/anvil-bench",
            swiftSettings: swiftSettings
        ),

        // test support and tests
        .target(
            name: "ApplianceTesting",
            dependencies: ["Lab", "ProvisioningModel", "NetworkPrimitives", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProvisioningModelTests",
            dependencies: ["ProvisioningModel", "NetworkPrimitives", "BootEnvRendering", "ApplianceTesting"],
            exclude: ["GoldenScripts"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowEngineTests",
            dependencies: ["WorkflowEngine", "ProvisioningModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SQLiteInventoryTests",
            dependencies: ["SQLiteInventory", "ProvisioningModel", "NetworkPrimitives", "ApplianceTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "HTTPAPI", "SQLiteInventory", "ProvisioningModel", "Appliance", "ApplianceTesting", "BootEnvRendering",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                // Streams the server-sent events response, which the Hummingbird test clients collect whole.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ApplianceTests",
            dependencies: [
                "Appliance", "ApplianceTesting", "ProvisioningModel", "SQLiteInventory", "BootEnvRendering", "DHCPWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TFTPWireTests",
            dependencies: ["TFTPWire", "ApplianceTesting", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TFTPServiceTests",
            dependencies: [
                "TFTPService", "TFTPWire", "ProvisioningModel", "ApplianceTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BootPolicyTests",
            dependencies: ["BootPolicy", "DHCPWire", "ProvisioningModel", "NetworkPrimitives", "ApplianceTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DHCPWireTests",
            dependencies: ["DHCPWire", "NetworkPrimitives", "ApplianceTesting", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Golden")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BootMediaImportTests",
            dependencies: [
                "BootMediaImport", "ProvisioningModel", "ApplianceTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FreeIPMIPowerTests",
            dependencies: ["FreeIPMIPower", "ProvisioningModel", "ApplianceTesting"],
            swiftSettings: swiftSettings
        ),
    ]
)
