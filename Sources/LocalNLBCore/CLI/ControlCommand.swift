import Foundation
import Glibc
import ProxyProtocol

/// `localnlb ctl`: the control API behind the AWS CLI's verbs and argument shapes.
public enum ControlCommand {
    public struct Outcome: Equatable {
        public var output: String
        public var error: String
        public var exitCode: Int32
    }

    struct Failure: Error {
        var message: String
        var exitCode: Int32 = 252  // the AWS CLI's code for a command-line error
    }

    /// Runs one command; output and exit code as the AWS CLI would give them (254 for a service error,
    /// 255 when the daemon cannot be reached, 252 for a usage error).
    public static func run(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Outcome
    {
        do {
            let (verb, options) = try parse(arguments)
            let endpoint = try endpoint(options["--endpoint-url"]?.first ?? "http://127.0.0.1:8404")
            let token = options["--token"]?.first ?? environment["LOCALNLB_TOKEN"]
            let (method, path, body) = try request(verb, options)
            let (status, response) = try send(method: method, path: path, body: body, to: endpoint, token: token)
            if (200..<300).contains(status) {
                return Outcome(
                    output: verb == "get-metrics" ? response : JSONText.pretty(response), error: warningLines(response),
                    exitCode: 0)
            }
            return Outcome(output: "", error: errorLine(response, verb: verb, status: status), exitCode: 254)
        } catch let failure as Failure {
            return Outcome(output: "", error: failure.message + "\n", exitCode: failure.exitCode)
        } catch {
            return Outcome(output: "", error: "\(error)\n", exitCode: 255)
        }
    }

    static let verbs: [String: [String]] = [
        "describe-target-groups": [],
        "describe-target-health": ["--target-group-name"],
        "register-targets": ["--target-group-name", "--targets"],
        "deregister-targets": ["--target-group-name", "--targets"],
        "describe-target-group-attributes": ["--target-group-name"],
        "modify-target-group-attributes": ["--target-group-name", "--attributes"],
        "describe-flows": [],
        "export-config": [],
        "get-metrics": [],
    ]

    /// The verb, and each `--option` with the values after it (`--targets A B` has two).
    static func parse(_ arguments: [String]) throws -> (String, [String: [String]]) {
        guard let verb = arguments.first else {
            throw Failure(message: "ctl needs a command: \(verbs.keys.sorted().joined(separator: ", "))")
        }
        guard let required = verbs[verb] else {
            throw Failure(
                message: "ctl: unknown command \(verb) (one of \(verbs.keys.sorted().joined(separator: ", ")))")
        }
        var options: [String: [String]] = [:]
        var current: String?
        for argument in arguments.dropFirst() {
            if argument.hasPrefix("--") {
                let known = ["--endpoint-url", "--token", "--target-group-name", "--target-group-arn"] + required
                guard known.contains(argument) else {
                    throw Failure(message: "ctl \(verb): unknown option \(argument)")
                }
                current = argument
                options[argument, default: []] = []
            } else if let option = current {
                options[option]!.append(argument)
            } else {
                throw Failure(message: "ctl \(verb): unexpected argument \(argument)")
            }
        }
        if let arn = options["--target-group-arn"]?.first, options["--target-group-name"] == nil {
            // arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
            let parts = arn.split(separator: "/")
            options["--target-group-name"] = [parts.count >= 2 ? String(parts[1]) : arn]
        }
        for option in required where options[option]?.isEmpty ?? true {
            throw Failure(message: "ctl \(verb): \(option) is required")
        }
        return (verb, options)
    }

    static func request(_ verb: String, _ options: [String: [String]]) throws -> (String, String, String?) {
        let name = options["--target-group-name"]?.first ?? ""
        let group = "/target-groups/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
        switch verb {
        case "describe-target-groups": return ("GET", "/target-groups", nil)
        case "describe-target-health": return ("GET", group + "/health", nil)
        case "register-targets", "deregister-targets":
            let targets = try shorthand(options["--targets"]!, keys: ["Id", "Port", "AvailabilityZone"])
            return (
                "POST", group + (verb == "register-targets" ? "/register" : "/deregister"),
                JSONText.object([("Targets", targets)]).rendered
            )
        case "describe-target-group-attributes": return ("GET", group + "/attributes", nil)
        case "modify-target-group-attributes":
            let attributes = try shorthand(options["--attributes"]!, keys: ["Key", "Value"])
            return ("PUT", group + "/attributes", JSONText.object([("Attributes", attributes)]).rendered)
        case "describe-flows": return ("GET", "/flows", nil)
        case "export-config": return ("GET", "/config", nil)
        default: return ("GET", "/metrics", nil)
        }
    }

    /// The AWS CLI's shorthand `Id=127.0.0.1,Port=9003` (one item per word), or a JSON list as is.
    static func shorthand(_ words: [String], keys: [String]) throws -> JSONText {
        if words.count == 1, let first = words.first, first.hasPrefix("[") {
            guard let data = first.data(using: .utf8), (try? JSONSerialization.jsonObject(with: data)) != nil else {
                throw Failure(message: "ctl: \(first) is not valid JSON")
            }
            return .raw(first)
        }
        return .array(
            try words.map { word in
                var fields: [(String, JSONText)] = []
                for pair in word.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2, keys.contains(kv[0]) else {
                        throw Failure(
                            message:
                                "ctl: '\(pair)' in '\(word)' is not one of \(keys.map { "\($0)=…" }.joined(separator: ","))"
                        )
                    }
                    if kv[0] == "Port", let port = Int(kv[1]) {
                        fields.append((kv[0], .integer(Int64(port))))
                    } else {
                        fields.append((kv[0], .string(kv[1])))
                    }
                }
                return .object(fields)
            })
    }

    static func endpoint(_ url: String) throws -> IPEndpoint {
        var rest = Substring(url)
        guard rest.hasPrefix("http://") else {
            throw Failure(message: "--endpoint-url \(url): use http://ADDRESS:PORT (the control API speaks plain HTTP)")
        }
        rest = rest.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.hasPrefix("localhost:") { rest = "127.0.0.1" + rest.dropFirst("localhost".count) }
        guard let endpoint = IPEndpoint(rest) else {
            throw Failure(message: "--endpoint-url \(url): not http://ADDRESS:PORT")
        }
        return endpoint
    }

    /// One request on a new connection; returns the status and the body.
    static func send(method: String, path: String, body: String?, to endpoint: IPEndpoint, token: String?) throws
        -> (Int, String)
    {
        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\n"
        head += "Content-Length: \(payload.count)\r\n"
        if payload.count > 0 { head += "Content-Type: application/json\r\n" }
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        do {
            let (_, status, response) = try BlockingConnection.exchange(
                Array((head + "\r\n").utf8) + payload, with: endpoint, timeoutSeconds: 10)
            return (status, response)
        } catch .connect(let error) {
            throw Failure(
                message:
                    "Could not connect to the endpoint URL: \"http://\(endpoint)\" (\(error.errno)); is localnlb serve running?",
                exitCode: 255)
        } catch .noResponse {
            throw Failure(message: "no HTTP response from http://\(endpoint)", exitCode: 255)
        }
    }

    /// `An error occurred (Code) when calling the Operation operation: Message`, as the AWS CLI prints it.
    static func errorLine(_ body: String, verb: String, status: Int) -> String {
        let operation = verb.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        let error = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let details = error?["Error"] as? [String: Any]
        let code = details?["Code"] as? String ?? "HTTP\(status)"
        let message = details?["Message"] as? String ?? body
        return "\nAn error occurred (\(code)) when calling the \(operation) operation: \(message)\n"
    }

    /// Re-indents JSON text with four spaces, keeping key order (the AWS CLI's `--output json` look).
    /// `"Warnings": [...]` of a response, one `warning: …` line each, for stderr.
    static func warningLines(_ response: String) -> String {
        guard let (value, _) = try? JSONParser.parse(Array(response.utf8)), case .object(let object) = value,
            case .array(let warnings)? = object["Warnings"]
        else { return "" }
        return warnings.compactMap { warning -> String? in
            guard case .string(let text) = warning else { return nil }
            return "warning: \(text)\n"
        }.joined()
    }

}
