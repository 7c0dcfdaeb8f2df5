// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LocalNLB",
    products: [
        .library(name: "ProxyProtocol", targets: ["ProxyProtocol"]),
        .executable(name: "localnlb", targets: ["localnlb"]),
    ],
    targets: [
        // The Linux calls this toolchain's Glibc module does not export (epoll, timerfd, eventfd,
        // signalfd, splice, pipe2, accept4, recvmmsg, CPU affinity), as thin wrappers.
        .target(
            name: "CLocalNLB",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // A pure codec: no sockets, no Glibc, no Foundation.
        .target(name: "ProxyProtocol"),
        .target(
            name: "LocalNLBCore",
            dependencies: ["CLocalNLB", "ProxyProtocol"]
        ),
        .executableTarget(
            name: "localnlb",
            dependencies: ["LocalNLBCore"]
        ),
        .testTarget(name: "ProxyProtocolTests", dependencies: ["ProxyProtocol"]),
        .testTarget(name: "LocalNLBCoreTests", dependencies: ["LocalNLBCore", "ProxyProtocol", "CLocalNLB"]),
    ],
    swiftLanguageModes: [.v6]
)
