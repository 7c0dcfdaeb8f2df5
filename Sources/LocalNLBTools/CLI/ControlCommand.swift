import Foundation
import Glibc
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `localnlb ctl`: the AWS CLI's `elbv2` commands with its argument shapes, global options and output
/// formats, sent to the ELBv2 Query API as the AWS CLI sends them; plus localnlb's own commands
/// (describe-flows, export-config, get-metrics) on its JSON API, and `wait`.
public enum ControlCommand {
    public struct Outcome: Equatable {
        public var output: String
        public var error: String
        public var exitCode: Int32
    }

    package struct Failure: Error {
        package var message: String
        package var exitCode: Int32 = 252  // the AWS CLI's code for a command-line error
    }

    /// Options every command takes, anywhere on the line (the AWS CLI's global options); those localnlb
    /// has no use for (`--profile`) are accepted and ignored.
    static let globalValues = [
        "--endpoint-url", "--output", "--token", "--region", "--profile", "--cli-read-timeout", "--cli-connect-timeout",
        "--color", "--query",
    ]
    static let globalFlags = [
        "--no-cli-pager", "--no-paginate", "--no-sign-request", "--no-verify-ssl", "--debug", "--version",
    ]

    /// localnlb's own commands, on its JSON API.
    static let ownCommands = [
        "describe-flows": "/flows", "export-config": "/config", "get-metrics": "/metrics",
    ]

    public static var commandList: String {
        (ELBv2Commands.commands.keys.sorted() + ZonalShiftCommands.commands.keys.sorted() + ownCommands.keys.sorted()
            + ["wait"]).joined(separator: ", ")
    }

    /// `ctl COMMAND --help`: the command's options as the AWS CLI spells them (required ones marked),
    /// or nil for a command ctl does not have.
    public static func help(for command: String) -> String? {
        var lines = [
            "localnlb ctl \(command) [options] [--endpoint-url URL] [--query JMESPATH] [--output json|text|table]", "",
        ]
        if let parameters = ELBv2Commands.commands[command] {
            lines.append("The AWS CLI's `aws elbv2 \(command)`, as ELBv2's \(ELBv2Commands.action(command)). Options:")
            for parameter in parameters {
                let required = parameter.hasSuffix("*")
                let name = ELBv2Commands.option(required ? String(parameter.dropLast()) : parameter)
                lines.append("  \(name)\(required ? "   (required)" : "")")
            }
            if parameters.contains(where: { $0.hasPrefix("TargetGroupArn") }) {
                lines.append("  --target-group-name NAME   localnlb's shortcut for --target-group-arn")
            }
        } else if let options = ZonalShiftCommands.commands[command] {
            lines.append("The AWS CLI's `aws arc-zonal-shift \(command)`. Options:")
            for option in options {
                lines.append("  \(option.hasSuffix("*") ? String(option.dropLast()) + "   (required)" : option)")
            }
        } else if command == "wait" {
            lines[0] = "localnlb ctl wait WAITER [options] [--endpoint-url URL]"
            lines.append("AWS's waiters, polling every 15 s × the daemon's --time-scale:")
            lines.append("  " + Waiters.waiters.keys.sorted().joined(separator: ", "))
        } else if ownCommands[command] != nil {
            lines.append("localnlb's own (its JSON API); no options but the global ones.")
        } else {
            return nil
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs one command; output and exit code as the AWS CLI would give them (254 for a service error,
    /// 255 when the daemon cannot be reached or a waiter fails, 252 for a usage error).
    public static func run(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Outcome
    {
        do {
            let line = try parse(arguments)
            if line.flags.contains("--version") {
                return Outcome(output: "localnlb \(LocalNLBVersion.current)\n", error: "", exitCode: 0)
            }
            var words = line.words
            if words.first == "elbv2" { words.removeFirst() }  // `ctl elbv2 describe-…`, as after `aws`
            guard let command = words.first else { throw Failure(message: "ctl needs a command: \(commandList)") }
            let endpoint = try endpoint(line.globals["--endpoint-url"] ?? "http://127.0.0.1:8404")
            let outputName = line.globals["--output"] ?? environment["AWS_DEFAULT_OUTPUT"] ?? "json"
            guard let output = CLIOutput(rawValue: outputName) else {
                throw Failure(message: "ctl: --output \(outputName): one of json, text, table")
            }
            var query: Query?
            if let text = line.globals["--query"] {
                do throws(Query.SyntaxError) {
                    query = try Query.parse(text)
                } catch {
                    throw Failure(message: "\nBad value for --query \(text): \(error.message)")
                }
            }
            var environment = environment
            if let region = line.globals["--region"] { environment["AWS_REGION"] = region }
            if line.flags.contains("--no-sign-request") { environment["AWS_ACCESS_KEY_ID"] = nil }
            let credentials = ClientCredentials(
                environment: environment, token: line.globals["--token"] ?? environment["LOCALNLB_TOKEN"])
            if let path = ownCommands[command] {
                guard words.count == 1, line.options.isEmpty else {
                    throw Failure(message: "ctl \(command): takes no options but the global ones")
                }
                return try own(command, path: path, endpoint: endpoint, credentials: credentials, output: output)
            }
            if ZonalShiftCommands.commands[command] != nil {
                guard words.count == 1 else {
                    throw Failure(message: "ctl \(command): unexpected argument \(words[1])")
                }
                return try ZonalShiftCommands.run(
                    command, line.options, endpoint: endpoint, credentials: credentials, output: output, query: query)
            }
            var options = line.options
            if let name = options.removeValue(forKey: "--target-group-name") {
                // localnlb's shortcut: the group by name, looked up as an AWS CLI user would (once the
                // rest of the line is known to be right).
                options["--target-group-arn"] = ["arn:aws:elasticloadbalancing:::targetgroup/\(name)"]
                let checked = command == "wait" ? Waiters.waiters[words.dropFirst().first ?? ""]?.command : command
                if let checked, ELBv2Commands.commands[checked] != nil { _ = try ELBv2Commands.form(checked, options) }
                options["--target-group-arn"] = [try targetGroupARN(name, endpoint: endpoint, environment: environment)]
            }
            let call = { (form: [(String, String)]) throws -> QueryClient.Answer in
                try QueryClient.call(form, endpoint: endpoint, environment: environment)
            }
            if command == "wait" {
                guard words.count == 2, let waiter = Waiters.waiters[words[1]] else {
                    throw Failure(
                        message: "ctl wait needs one of: \(Waiters.waiters.keys.sorted().joined(separator: ", "))")
                }
                let delay = max(15 * timeScale(endpoint: endpoint, credentials: credentials), 0.05)
                if let failure = try Waiters.wait(waiter, options, delaySeconds: delay, call: call) {
                    return Outcome(output: "", error: "\n\(failure)\n", exitCode: 255)
                }
                return Outcome(output: "", error: "", exitCode: 0)
            }
            guard ELBv2Commands.commands[command] != nil else {
                throw Failure(message: "ctl: unknown command \(command) (one of \(commandList))")
            }
            guard words.count == 1 else { throw Failure(message: "ctl \(command): unexpected argument \(words[1])") }
            let form = try ELBv2Commands.form(command, options)
            var answer = try call(form)
            // The AWS CLI joins the pages of a paginated command unless --no-paginate or --marker is given.
            if let key = ELBv2Commands.pagedResults[command], options["--marker"] == nil,
                !line.flags.contains("--no-paginate")
            {
                answer = try allPages(answer, key: key, form: form, call: call)
            }
            switch answer {
            case .result(let value):
                return Outcome(
                    output: output.render(query?.evaluate(value) ?? value, title: ELBv2Commands.action(command)),
                    error: "", exitCode: 0)
            case .error(let code, let message):
                return Outcome(
                    output: "",
                    error: "\nAn error occurred (\(code)) when calling the \(ELBv2Commands.action(command)) operation: "
                        + "\(message)\n", exitCode: 254)
            }
        } catch let failure as Failure {
            return Outcome(output: "", error: failure.message + "\n", exitCode: failure.exitCode)
        } catch {
            return Outcome(output: "", error: "\(error)\n", exitCode: 255)
        }
    }

    /// Follows `NextMarker` and joins the pages' `key` lists into one answer, without a marker.
    static func allPages(
        _ first: QueryClient.Answer, key: String, form: [(String, String)],
        call: ([(String, String)]) throws -> QueryClient.Answer
    ) throws -> QueryClient.Answer {
        guard case .result(.object(var fields)) = first else { return first }
        var items: [JSONText] = []
        if case .array(let page)? = fields.first(where: { $0.0 == key })?.1 { items = page }
        var marker = Waiters.strings(fields.first { $0.0 == "NextMarker" }?.1 ?? .null, []).first
        while let next = marker {
            let answer = try call(form.filter { $0.0 != "Marker" } + [("Marker", next)])
            guard case .result(.object(let page)) = answer else { return answer }
            if case .array(let more)? = page.first(where: { $0.0 == key })?.1 { items += more }
            marker = Waiters.strings(page.first { $0.0 == "NextMarker" }?.1 ?? .null, []).first
        }
        fields.removeAll { $0.0 == "NextMarker" }
        if let position = fields.firstIndex(where: { $0.0 == key }) { fields[position].1 = .array(items) }
        return .result(.object(fields))
    }

    package struct CommandLine {
        package var words: [String] = []
        var globals: [String: String] = [:]
        package var flags: Set<String> = []
        package var options: [String: [String]] = [:]
    }

    /// Words, global options (anywhere), and each command option with the words after it
    /// (`--targets A B` has two).
    package static func parse(_ arguments: [String]) throws -> CommandLine {
        var line = CommandLine()
        var current: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if globalValues.contains(argument) {
                guard index < arguments.count else { throw Failure(message: "ctl: \(argument) needs a value") }
                line.globals[argument] = arguments[index]
                index += 1
                current = nil
            } else if globalFlags.contains(argument) {
                line.flags.insert(argument)
                current = nil
            } else if argument.hasPrefix("--") {
                guard line.options[argument] == nil else { throw Failure(message: "ctl: \(argument) is given twice") }
                current = argument
                line.options[argument] = []
            } else if let option = current {
                line.options[option]!.append(argument)
            } else {
                line.words.append(argument)
            }
        }
        return line
    }

    /// A target group's ARN from its name (`--target-group-name`).
    static func targetGroupARN(_ words: [String], endpoint: IPEndpoint, environment: [String: String]) throws
        -> String
    {
        guard words.count == 1 else { throw Failure(message: "ctl: --target-group-name takes one name") }
        let form = try ELBv2Commands.form("describe-target-groups", ["--names": words])
        switch try QueryClient.call(form, endpoint: endpoint, environment: environment) {
        case .result(let value):
            guard let arn = Waiters.strings(value, ["TargetGroups", "TargetGroupArn"]).first else {
                throw Failure(message: "ctl: no target group named \(words[0])", exitCode: 254)
            }
            return arn
        case .error(let code, let message):
            throw Failure(
                message: "\nAn error occurred (\(code)) when calling the DescribeTargetGroups operation: \(message)",
                exitCode: 254)
        }
    }

    /// The daemon's `--time-scale` (1 when it does not say).
    package static func timeScale(endpoint: IPEndpoint, credentials: ClientCredentials) -> Double {
        guard
            let (status, body) = try? send(
                method: "GET", path: "/status", body: nil, to: endpoint, credentials: credentials),
            status == 200, let (value, _) = try? JSONParser.parse(Array(body.utf8)), case .object(let fields) = value,
            case .number(let scale)? = fields["TimeScale"], scale > 0
        else { return 1 }
        return scale
    }

    /// describe-flows, export-config, get-metrics: localnlb's JSON API.
    package static func own(
        _ command: String, path: String, endpoint: IPEndpoint, credentials: ClientCredentials, output: CLIOutput
    ) throws -> Outcome {
        let (status, response) = try send(
            method: "GET", path: path, body: nil, to: endpoint, credentials: credentials)
        guard (200..<300).contains(status) else {
            return Outcome(output: "", error: errorLine(response, verb: command, status: status), exitCode: 254)
        }
        if command == "export-config" && response.contains("\"\(AdminConfiguration.redacted)\"") {
            return Outcome(
                output: response,
                error: "localnlb: Admin.Token and Admin.SecretAccessKey are written as \(AdminConfiguration.redacted): "
                    + "put the real ones back before serving this file\n", exitCode: 0)
        }
        guard command == "describe-flows", output != .json, let (value, _) = try? JSONParser.parse(Array(response.utf8))
        else {
            return Outcome(
                output: command == "describe-flows" ? JSONText.pretty(response) : response, error: "", exitCode: 0)
        }
        return Outcome(output: output.render(value.text, title: "DescribeFlows"), error: "", exitCode: 0)
    }

    package static func endpoint(_ url: String) throws -> IPEndpoint {
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

    /// One request to the JSON API on a new connection; returns the status and the body.
    package static func send(
        method: String, path: String, body: String?, to endpoint: IPEndpoint, credentials: ClientCredentials
    ) throws -> (Int, String) {
        var headers = [("Host", endpoint.description)]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        credentials.authorize(method: method, path: path, body: Array((body ?? "").utf8), headers: &headers)
        return try send(method: method, path: path, body: body, headers: headers, to: endpoint)
    }

    package static func send(
        method: String, path: String, body: String?, headers: [(String, String)], to endpoint: IPEndpoint
    )
        throws -> (Int, String)
    {
        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nConnection: close\r\nContent-Length: \(payload.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        do {
            let (_, status, response) = try BlockingConnection.exchange(
                Array((head + "\r\n").utf8) + payload, with: endpoint, timeoutSeconds: 10)
            return (status, response)
        } catch .connect(let error) {
            throw Failure(
                message:
                    "Could not connect to the endpoint URL: \"http://\(endpoint)/\" (\(error.errno)); is localnlb serve running?",
                exitCode: 255)
        } catch .noResponse {
            throw Failure(message: "no HTTP response from http://\(endpoint)", exitCode: 255)
        } catch .tls(let error) {
            throw Failure(message: "\(error)", exitCode: 255)
        }
    }

    /// `An error occurred (Code) when calling the Operation operation: Message`, as the AWS CLI prints it.
    static func errorLine(_ body: String, verb: String, status: Int) -> String {
        let error = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let details = error?["Error"] as? [String: Any]
        let code = details?["Code"] as? String ?? "HTTP\(status)"
        let message = details?["Message"] as? String ?? body
        return "\nAn error occurred (\(code)) when calling the \(ELBv2Commands.action(verb)) operation: \(message)\n"
    }
}
