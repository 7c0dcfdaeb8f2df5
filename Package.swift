// swift-tools-version:6.0
import PackageDescription

// The layers, each a module that sees only those below it (README, Architecture):
//   ProxyProtocol     addresses and the PROXY protocol codec
//   LocalNLBModel     configuration, attributes, target lifecycle, changes: pure values, no I/O
//   LocalNLBDataPlane system calls, event loops, flows, UDP, TLS (OpenSSL), the routing table the loops read
//   LocalNLBControl   the control plane: health checks, DNS, both APIs, metrics, reload, event log
//   LocalNLBTools     the built-in target, the demos, `ctl`
//   localnlb          the executable
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
        // The system's OpenSSL 3 for TLS listeners (libssl-dev to build): never TLS or crypto of our own.
        .systemLibrary(name: "CLocalNLBTLS", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // A pure codec: no sockets, no Glibc, no Foundation.
        .target(name: "ProxyProtocol"),
        .target(name: "LocalNLBModel", dependencies: ["ProxyProtocol"]),
        .target(
            name: "LocalNLBDataPlane", dependencies: ["LocalNLBModel", "ProxyProtocol", "CLocalNLB", "CLocalNLBTLS"]
        ),
        .target(
            name: "LocalNLBControl",
            dependencies: ["LocalNLBDataPlane", "LocalNLBModel", "ProxyProtocol", "CLocalNLB"]
        ),
        .target(
            name: "LocalNLBTools",
            dependencies: ["LocalNLBControl", "LocalNLBDataPlane", "LocalNLBModel", "ProxyProtocol", "CLocalNLB"]
        ),
        .executableTarget(
            name: "localnlb",
            dependencies: ["LocalNLBTools", "LocalNLBControl", "LocalNLBModel", "ProxyProtocol"]
        ),
        .testTarget(name: "ProxyProtocolTests", dependencies: ["ProxyProtocol"]),
        .testTarget(
            name: "LocalNLBTests",
            dependencies: [
                "LocalNLBTools", "LocalNLBControl", "LocalNLBDataPlane", "LocalNLBModel", "ProxyProtocol", "CLocalNLB",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
