import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import LocalNLBTools
import ProxyProtocol

let usage = """
    localnlb — an AWS Network Load Balancer target group on this machine

    USAGE
      localnlb serve [--config FILE] [--flow-log FILE] [--drain-seconds N] [--time-scale F] [--event-loops N]
                     [--cpu-affinity off|auto] [--log-format text|json] [--admin-address A] [--dns-address A]
                     [--strict]
      localnlb ctl COMMAND [options] [--endpoint-url URL] [--output json|text|table]
      localnlb check-config FILE [--strict]
      localnlb target --listen HOST:PORT [--name NAME] [--proxy-protocol off|optional|required] [--banner TEXT]
                      [--trust CIDR[,CIDR…]] [--header-timeout SECONDS] [--udp]
      localnlb demo [zones]
      localnlb ca             the local certificate authority's certificate: its path, made when missing
      localnlb version        (also --version)

    Run 'localnlb COMMAND --help' for one command.
    """

let commandHelp: [String: String] = [
    "ca": """
    localnlb ca

    Prints the path of the certificate of localnlb's own certificate authority, making the authority
    first when there is none: an ECDSA P-256 key (ca-key.pem, mode 0600) and its certificate (ca.pem),
    in LOCALNLB_CA_DIR, else $XDG_DATA_HOME/localnlb, else ~/.local/share/localnlb. It issues the
    certificate of every TLS listener whose ACM ARN nobody imported, for the load balancer's DNS name,
    its node addresses and localhost: trust the path printed (curl --cacert "$(localnlb ca)") and they
    verify.
    """,
    "serve": """
    localnlb serve [--config FILE [--persist]] [--flow-log FILE] [--drain-seconds N] [--time-scale F]
                   [--event-loops N] [--cpu-affinity off|auto] [--log-format text|json]
                   [--admin-address ADDRESS:PORT] [--dns-address ADDRESS:PORT] [--strict]

    Runs the load balancer of FILE until SIGTERM or SIGINT, then stops accepting, lets flows finish
    for --drain-seconds (default 10) and exits 0. SIGHUP re-reads FILE (an invalid file changes nothing).
    Without --config: an empty host (no load balancer yet), its control API (and the ELBv2 API) on
    127.0.0.1:8404 and its DNS responder on 127.0.0.1:8053.
      --config FILE       the JSON configuration (see README: configuration reference)
      --persist           write the running model back to FILE after every change made through an API
      --flow-log FILE     one JSON line per ended flow, appended to FILE (default: a text line on stderr;
                          off: no flow log)
      --admin-address A   where the control API listens, over the file's Admin.Address (port 0: any
                          free port; the log and GET /status say which)
      --dns-address A     where the DNS responder answers, over the file's Dns.Address (port 0 likewise)
      --log-format F      the event log on stderr: text (each line with its time, the default) or json
                          (one {"time":…,"message":…} object a line, for log shippers)
      --drain-seconds N   how long flows may finish after a stop signal (default 10)
      --time-scale F      multiply every AWS timer by F (health checks, draining, idle timeout):
                          0.01 turns 300 s of deregistration delay into 3 s
      --event-loops N     epoll loops, one thread each (default: one per core, here \(onlineCores()));
                          health checks, the control API and reloads run on a thread of their own
      --cpu-affinity off|auto
                          off (default): the scheduler places the loops; auto: each loop stays on one
                          CPU, loop i on the i-th CPU this process may use (taskset limits them)
      --strict            values AWS would reject are errors, not warnings
    """,
    "ctl": """
    localnlb ctl [elbv2] COMMAND [options] [--endpoint-url URL] [--output json|text|table]

    The AWS CLI's elbv2 commands with its option shapes, sent to localnlb's ELBv2 API as the AWS CLI
    sends them (signed with SigV4 when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set); output
    as the AWS CLI prints it. Global options go anywhere on the line.
      create-load-balancer --name N --type network --subnets subnet-a [subnet-b …] | --subnet-mappings …
      describe-load-balancers [--names N …] [--load-balancer-arns ARN …]   delete-load-balancer …
      create-target-group --name N --protocol TCP --port P --target-type ip|instance [--health-check-…]
      create-listener --load-balancer-arn ARN --protocol TCP --port P --default-actions Type=forward,TargetGroupArn=ARN
      register-targets | deregister-targets --target-group-arn ARN --targets Id=127.0.0.1,Port=9003 [...]
      describe-target-health --target-group-arn ARN [--targets …]
      modify-target-group-attributes --target-group-arn ARN --attributes Key=K,Value=V [...]
      … and describe-/modify-/delete- of each, add-tags, remove-tags, describe-tags
      wait load-balancer-available | load-balancer-exists | load-balancers-deleted | target-in-service |
           target-deregistered   (AWS's waiters: every 15 s × the daemon's --time-scale, 40 times at most)
      describe-flows | get-metrics | export-config   (localnlb's own: flow table, Prometheus text, config file)
      --endpoint-url URL       the daemon's control API (default http://127.0.0.1:8404)
      --output FORMAT          json (default), text or table
      --target-group-name NAME localnlb's shortcut for --target-group-arn
      --token TOKEN            the JSON API's bearer token (Admin.Token); default: $LOCALNLB_TOKEN
    Exit codes as the AWS CLI's: 254 an error from the API, 255 no daemon or a waiter gave up, 252 usage.
    """,
    "check-config": """
    localnlb check-config FILE [--strict]

    Checks FILE and prints every problem on its own line, naming its JSON path.
    Exit 0 when it is valid, 2 when it is not. --strict turns warnings (values AWS would reject) into errors.
    """,
    "target": """
    localnlb target --listen HOST:PORT [--name NAME] [--proxy-protocol off|optional|required] [--banner TEXT]
                    [--trust CIDR[,CIDR…]] [--header-timeout SECONDS] [--udp]

    A target that reports what it saw: the TCP peer, its own address and any PROXY header, as JSON.
    An HTTP/1.x request gets the JSON as a 200 response; anything else gets it as one line, then an echo.
      --udp                    also on UDP, same port: each datagram is answered with one JSON line
                               (its source, which is the client when its address was kept)
      --listen HOST:PORT       where to listen ([::1]:9001 for IPv6)
      --name NAME              the name in the report (default: target)
      --proxy-protocol MODE    off: headers are data; optional (default): parsed if present;
                               required: connections without one are closed
      --banner TEXT            speak first (after the header when required), as SMTP does
      --trust CIDR[,CIDR…]     believe PROXY headers only from peers in these ranges (your load balancer),
                               as nginx's set_real_ip_from; a header from anyone else is read, reported
                               as "untrustedProxy" with the reason, and not believed
      --header-timeout SECONDS a connection whose PROXY header is not complete this long after it
                               was accepted is closed (default 10); so is one whose CRC32C does not match
    """,
    "demo": """
    localnlb demo [zones]

    Starts targets and four listeners (instance; ip; ip with proxy_protocol_v2.enabled; UDP) on
    loopback, sends one request (a datagram for UDP) through each from 127.0.0.2 and shows what each
    target saw.
    zones: two Availability Zones on loopback; cross-zone load balancing off and on, a zone losing its
    target, and what the load balancer's DNS name resolves to at each step.
    """,
]

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// Flags of one subcommand: `--name value` pairs and switches; anything unknown is an error.
struct Flags {
    var values: [String: String] = [:]
    var switches: Set<String> = []
    var positional: [String] = []

    init(_ arguments: ArraySlice<String>, valued: Set<String>, switches allowed: Set<String>, positional limit: Int = 0)
        throws
    {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if valued.contains(argument) {
                guard let value = rest.popFirst() else { throw UsageError(description: "\(argument) needs a value") }
                values[argument] = value
            } else if allowed.contains(argument) {
                switches.insert(argument)
            } else if argument.hasPrefix("-") {
                throw UsageError(description: "unknown option \(argument)")
            } else {
                guard positional.count < limit else { throw UsageError(description: "unexpected argument \(argument)") }
                positional.append(argument)
            }
        }
    }
}

/// The cores this process may run on: the daemon's default number of event loops.
func onlineCores() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("localnlb: \(message)\n".utf8))
    exit(code)
}

func printWarnings(_ warnings: [String]) {
    for warning in warnings { FileHandle.standardError.write(Data("localnlb: warning: \(warning)\n".utf8)) }
}

func serve(_ flags: Flags) throws {
    let path = flags.values["--config"]
    var options = LoadBalancerOptions()
    options.handlesSignals = true
    if let text = flags.values["--time-scale"] {
        guard let scale = Double(text), scale > 0, scale <= 1000 else {
            throw UsageError(description: "--time-scale \(text): not a factor above 0 (0.01 makes 300 s into 3 s)")
        }
        options.timeScale = scale
    }
    options.configPath = path
    if flags.switches.contains("--persist") {
        guard path != nil else { throw UsageError(description: "--persist writes to the --config file: give one") }
        options.persists = true
    }
    options.eventLoops = onlineCores()
    if let text = flags.values["--event-loops"] {
        guard let loops = Int(text), (1...256).contains(loops) else {
            throw UsageError(description: "--event-loops \(text): not a number of loops from 1 to 256")
        }
        options.eventLoops = loops
    }
    switch flags.values["--cpu-affinity"] ?? "off" {
    case "auto": options.pinsLoops = true
    case "off": options.pinsLoops = false
    case let text:
        throw UsageError(
            description: "--cpu-affinity \(text): off (the scheduler places the loops) or auto (one CPU per loop)")
    }
    options.strict = flags.switches.contains("--strict")
    if let text = flags.values["--drain-seconds"] {
        guard let seconds = Double(text), seconds >= 0 else {
            throw UsageError(description: "--drain-seconds \(text): not a number of seconds")
        }
        options.drainSeconds = seconds
    }
    let loaded: LoadedConfiguration
    if let path {
        do {
            loaded = try ConfigLoader.load(path: path, strict: flags.switches.contains("--strict"))
        } catch let error as ConfigurationError {
            fail("\(path): invalid configuration\n" + error.description, code: 2)
        }
    } else {
        // No file: an empty load balancer host, driven through the control API and the ELBv2 API.
        loaded = try ConfigLoader.load(data: Data("{}".utf8), name: "(no --config)")
    }
    var configuration = loaded.configuration
    // Where the control API and the DNS responder listen, over the file (a template cannot say): port 0
    // takes any free port, and the log's first lines and GET /status say which.
    if let text = flags.values["--admin-address"] {
        guard let address = IPEndpoint(text) else {
            throw UsageError(description: "--admin-address \(text): not ADDRESS:PORT (127.0.0.1:0 takes a free port)")
        }
        if configuration.admin == nil { configuration.admin = AdminConfiguration() }
        configuration.admin?.address = address
    }
    if let text = flags.values["--dns-address"] {
        guard let address = IPEndpoint(text) else {
            throw UsageError(description: "--dns-address \(text): not ADDRESS:PORT (127.0.0.1:0 takes a free port)")
        }
        configuration.dns = DNSConfiguration(address: address, explicit: true)
    }
    printWarnings(loaded.warnings)
    for note in loaded.notes { FileHandle.standardError.write(Data("localnlb: \(note)\n".utf8)) }
    switch flags.values["--log-format"] ?? "text" {
    case "text": options.log = LoadBalancerOptions.textLog
    case "json": options.log = LoadBalancerOptions.jsonLog
    case let other: throw UsageError(description: "--log-format \(other): text or json")
    }
    if let logPath = flags.values["--flow-log"] {
        options.flowLog = logPath == "off" ? .disabled : try FlowLog.jsonLines(path: logPath)
    }
    let balancer: LoadBalancer
    do {
        balancer = try LoadBalancer(configuration: configuration, options: options)
    } catch {
        fail("\(error)", code: 1)
    }
    options.log("localnlb \(LocalNLBVersion.current), \(options.eventLoops) event loop(s)")
    if let admin = balancer.adminEndpoint {
        options.log("control API on http://\(admin)")
    }
    if let dns = balancer.dnsEndpoint {
        options.log("DNS responder on \(dns) (UDP and TCP)")
    }
    try balancer.run()
}

func checkConfig(_ flags: Flags) {
    guard let path = flags.positional.first else { fail("check-config needs a FILE\n\n" + usage, code: 64) }
    do {
        let loaded = try ConfigLoader.load(path: path, strict: flags.switches.contains("--strict"))
        printWarnings(loaded.warnings)
        for note in loaded.notes { FileHandle.standardError.write(Data("localnlb: \(note)\n".utf8)) }
        let c = loaded.configuration
        print(
            "\(path): valid — \(c.loadBalancers.count) load balancer(s), \(c.listeners.count) listener(s), "
                + "\(c.targetGroups.count) target group(s), \(c.loadBalancers.flatMap(\.nodes).count) node(s)"
        )
    } catch let error as ConfigurationError {
        for problem in error.problems { print(problem) }
        exit(2)
    } catch {
        fail("\(error)", code: 2)
    }
}

func target(_ flags: Flags) throws {
    guard let listen = flags.values["--listen"] else {
        throw UsageError(description: "target needs --listen HOST:PORT")
    }
    guard let endpoint = IPEndpoint(listen) else {
        throw UsageError(description: "--listen \(listen): not ADDRESS:PORT (IPv6 as [::1]:9001)")
    }
    let modeText = flags.values["--proxy-protocol"] ?? "optional"
    guard let mode = TargetServer.ProxyMode(rawValue: modeText) else {
        throw UsageError(description: "--proxy-protocol \(modeText): not off, optional or required")
    }
    var trust: ProxyTrust?
    if let text = flags.values["--trust"] {
        var ranges: [CIDR] = []
        for part in text.split(separator: ",") {
            guard let range = CIDR(part) else {
                throw UsageError(description: "--trust \(part): not an address range such as 198.51.100.0/24")
            }
            ranges.append(range)
        }
        trust = ProxyTrust(trusted: ranges)
    }
    var headerTimeout = 10.0
    if let text = flags.values["--header-timeout"] {
        guard let seconds = Double(text), seconds > 0, seconds <= 3600 else {
            throw UsageError(description: "--header-timeout \(text): not a number of seconds above 0 and at most 3600")
        }
        headerTimeout = seconds
    }
    let server: TargetServer
    do {
        server = try TargetServer(
            options: .init(
                listen: endpoint, name: flags.values["--name"] ?? "target", proxyMode: mode,
                banner: flags.values["--banner"], printsReports: true, trust: trust, headerTimeoutSeconds: headerTimeout
            ))
    } catch {
        fail("\(error)", code: 1)
    }
    FileHandle.standardError.write(Data("localnlb target: listening on \(server.endpoint)\n".utf8))
    var udp: UDPTargetServer?
    if flags.switches.contains("--udp") {
        do {
            udp = try UDPTargetServer(
                on: server.endpoint, name: flags.values["--name"] ?? "target", printsReports: true)
        } catch {
            fail("\(error)", code: 1)
        }
        FileHandle.standardError.write(Data("localnlb target: UDP on \(server.endpoint)\n".utf8))
    }
    ProcessSignals.lineBufferStandardOutput()
    // Serve until SIGTERM or SIGINT: blocked before the server's threads start, so only this one
    // takes them.
    ProcessSignals.blockTermination()
    server.start()
    udp?.start()
    _ = ProcessSignals.waitForTermination()
    server.stop()
    udp?.stop()
    exit(0)
}

func runControl(_ arguments: [String]) throws {
    let outcome = ControlCommand.run(arguments)
    print(outcome.output, terminator: "")
    FileHandle.standardError.write(Data(outcome.error.utf8))
    exit(outcome.exitCode)
}

func demo() throws {
    let rows = try Demo.run()
    print(Demo.render(rows))
}

let arguments = CommandLine.arguments.dropFirst()
guard let command = arguments.first else {
    print(usage)
    exit(64)
}
if ["-h", "--help", "help"].contains(command) {
    print(usage)
    exit(0)
}
if ["version", "--version"].contains(command) {
    print("localnlb \(LocalNLBVersion.current)")
    exit(0)
}
let rest = arguments.dropFirst()
if command == "ctl" {
    // `ctl help`, `ctl --help`: ctl's own help; `ctl COMMAND --help`: that command's options.
    let words = rest.filter { !$0.hasPrefix("-") }.drop { $0 == "elbv2" }
    if words.first == "help" || (words.isEmpty && (rest.contains("--help") || rest.contains("-h"))) {
        print(commandHelp["ctl"]!)
        print("Commands: " + ControlCommand.commandList)
        exit(0)
    }
    if let first = words.first, rest.contains("--help") || rest.contains("-h") {
        guard let help = ControlCommand.help(for: first) else {
            fail("ctl: unknown command \(first) (one of \(ControlCommand.commandList))", code: 252)
        }
        print(help, terminator: "")
        exit(0)
    }
}
if rest.contains("--help") || rest.contains("-h") {
    guard let help = commandHelp[command] else { fail("unknown command \(command)\n\n" + usage, code: 64) }
    print(help)
    exit(0)
}
do {
    switch command {
    case "serve":
        try serve(
            Flags(
                rest,
                valued: [
                    "--config", "--flow-log", "--drain-seconds", "--time-scale", "--event-loops", "--cpu-affinity",
                    "--log-format", "--admin-address", "--dns-address",
                ],
                switches: ["--strict", "--persist"]))
    case "ctl":
        try runControl(Array(rest))
    case "ca":
        _ = try Flags(rest, valued: [], switches: [])
        let store = CertificateStore(directory: LoadBalancerOptions().resolvedCertificateDirectory)
        _ = try store.loadAuthority()
        print(store.authorityPath)
    case "check-config":
        checkConfig(try Flags(rest, valued: [], switches: ["--strict"], positional: 1))
    case "target":
        try target(
            Flags(
                rest, valued: ["--listen", "--name", "--proxy-protocol", "--banner", "--trust", "--header-timeout"],
                switches: ["--udp"]))
    case "demo":
        let flags = try Flags(rest, valued: [], switches: [], positional: 1)
        switch flags.positional.first {
        case nil: try demo()
        case "zones"?: print(try ZonesDemo.run(), terminator: "")
        case let other?: fail("demo: unknown demo \(other) (localnlb demo, or localnlb demo zones)", code: 64)
        }
    default:
        fail("unknown command \(command)\n\n" + usage, code: 64)
    }
} catch let error as UsageError {
    fail("\(command): \(error)\n\n" + (commandHelp[command] ?? usage), code: 64)
} catch {
    fail("\(error)", code: 1)
}
