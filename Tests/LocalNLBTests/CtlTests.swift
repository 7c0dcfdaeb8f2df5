import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// `ctl`'s pieces: the AWS CLI's options as a Query form, its text output, the XML it reads back.
@Suite struct CtlPieces {
    @Test func optionsBecomeTheFormAWSCLISends() throws {
        let form = try ELBv2Commands.form(
            "create-listener",
            [
                "--load-balancer-arn": ["arn:lb"], "--port": ["80"],
                "--default-actions": ["Type=forward,TargetGroupArn=arn:tg"],
                "--tags": [#"[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]"#],
            ])
        #expect(
            form.map { "\($0.0)=\($0.1)" } == [
                "Action=CreateListener", "Version=2015-12-01", "DefaultActions.member.1.Type=forward",
                "DefaultActions.member.1.TargetGroupArn=arn:tg", "LoadBalancerArn=arn:lb", "Port=80",
                "Tags.member.1.Key=a", "Tags.member.1.Value=1", "Tags.member.2.Key=b", "Tags.member.2.Value=2",
            ])
        let group = try ELBv2Commands.form(
            "modify-target-group",
            ["--target-group-arn": ["t"], "--no-health-check-enabled": [], "--matcher": ["HttpCode=200-299"]])
        #expect(group.contains { $0 == ("HealthCheckEnabled", "false") })
        #expect(group.contains { $0 == ("Matcher.HttpCode", "200-299") })
        let names = try ELBv2Commands.form("describe-load-balancers", ["--names": ["a", "b"]])
        #expect(names.suffix(2).map(\.1) == ["a", "b"] && names.last?.0 == "Names.member.2")
        #expect(throws: ControlCommand.Failure.self) {
            try ELBv2Commands.form("register-targets", ["--target-group-arn": ["t"], "--targets": ["Ip=1"]])
        }
    }

    @Test func globalOptionsGoAnywhere() throws {
        let line = try ControlCommand.parse([
            "--output", "text", "elbv2", "describe-target-health", "--target-group-arn", "t", "--endpoint-url", "u",
            "--targets", "Id=a", "Id=b", "--no-cli-pager",
        ])
        #expect(line.words == ["elbv2", "describe-target-health"])
        #expect(line.globals == ["--output": "text", "--endpoint-url": "u"])
        #expect(line.options == ["--target-group-arn": ["t"], "--targets": ["Id=a", "Id=b"]])
        #expect(line.flags == ["--no-cli-pager"])
        #expect(
            ControlCommand.run(["describe-load-balancers", "--version"]).output
                == "localnlb \(LocalNLBVersion.current)\n")
    }

    /// The AWS CLI's text: scalars sorted by key on one line, led by the list's name; lists after.
    @Test func textOutputIsTheAWSCLIs() {
        let value = JSONText.object([
            (
                "TargetGroups",
                .array([
                    .object([
                        ("TargetGroupName", .string("web")), ("Port", .integer(80)),
                        ("HealthCheckEnabled", .bool(true)), ("LoadBalancerArns", .array([.string("arn:1")])),
                    ]),
                    .object([("TargetGroupName", .string("api")), ("LoadBalancerArns", .array([]))]),
                ])
            )
        ])
        #expect(
            CLIOutput.text.render(value, title: "DescribeTargetGroups")
                == "TARGETGROUPS\tTrue\t80\tweb\nLOADBALANCERARNS\tarn:1\nTARGETGROUPS\t\t\tapi\n")
        #expect(CLIOutput.json.render(.object([]), title: "DeleteListener").isEmpty)
        let table = CLIOutput.table.render(
            .object([("Attributes", .array([.object([("Key", .string("k"))])]))]), title: "T")
        #expect(table.hasPrefix("+") && table.contains("|| Key | k") && table.hasSuffix("+\n"))
    }

    /// Numbers as Python's json writes them: the shortest text that reads back the same, no padding zeros.
    @Test func numbersPrintAsTheAWSCLIPrintsThem() {
        #expect(JSONText.number(1_795_566_190.60832).rendered == "1795566190.60832")
        #expect(JSONText.number(0.5).rendered == "0.5")
        #expect(JSONText.number(.nan).rendered == "null")
        #expect(CLIOutput.json.render(.object([("t", .number(1.25))]), title: "T") == "{\n    \"t\": 1.25\n}\n")
    }

    @Test func theXMLAnswerReadsAsTheAWSCLIsJSON() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <DescribeTargetGroupsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">\
            <DescribeTargetGroupsResult><TargetGroups><member><TargetGroupName>a&amp;b</TargetGroupName>\
            <Port>80</Port><HealthCheckEnabled>true</HealthCheckEnabled><LoadBalancerArns></LoadBalancerArns>\
            </member></TargetGroups></DescribeTargetGroupsResult></DescribeTargetGroupsResponse>
            """
        let root = try #require(XMLReader.parse(xml))
        let result = try #require(root.child("DescribeTargetGroupsResult"))
        #expect(
            QueryClient.json(result).rendered
                == #"{"TargetGroups":[{"TargetGroupName":"a&b","Port":80,"HealthCheckEnabled":true,"LoadBalancerArns":[]}]}"#
        )
        #expect(XMLReader.parse("<a><b></a>") == nil)
    }
}

/// `--query`: JMESPath over an answer (scripts/aws-check.py compares it with the AWS CLI's own); here
/// the corners, and the errors a mistyped query gets.
@Suite struct QueryExpressions {
    let answer: JSONText = .object([
        (
            "TargetGroups",
            .array([
                .object([
                    ("Name", .string("web")), ("Port", .integer(80)), ("Tags", .array([.string("a"), .string("b")])),
                ]),
                .object([("Name", .string("api")), ("Port", .integer(9000)), ("Tags", .array([]))]),
            ])
        )
    ])

    func run(_ query: String) throws -> String { try Query.parse(query).evaluate(answer).rendered }

    @Test func projectionsFiltersAndFunctions() throws {
        #expect(try run("TargetGroups[*].Name") == #"["web","api"]"#)
        #expect(try run("TargetGroups[?Port > `100`].Name | [0]") == #""api""#)
        #expect(try run("TargetGroups[].Tags[]") == #"["a","b"]"#)
        #expect(try run("TargetGroups[*].Tags[0]") == #"["a"]"#)  // a null is left out of a projection
        #expect(try run("TargetGroups[::-1].Port") == "[9000,80]")
        #expect(
            try run("{n: length(TargetGroups), names: join(', ', TargetGroups[*].Name)}")
                == #"{"n":2,"names":"web, api"}"#)
        #expect(try run("TargetGroups[?Name=='web' || Port==`9000`] | length(@)") == "2")
        #expect(try run("TargetGroups[?!Tags].Name") == #"["api"]"#)
        #expect(try run(#"TargetGroups[0]."Port""#) == "80")
        #expect(try run("sum(TargetGroups[*].Port)") == "9080")
        #expect(try run("TargetGroups[5]") == "null")
    }

    @Test func mistakesAreNamed() {
        func problem(_ query: String) -> String? {
            do {
                _ = try Query.parse(query)
                return nil
            } catch { return error.message }
        }
        #expect(problem("TargetGroups[") == "unexpected end of the query in \"TargetGroups[\"")
        #expect(problem("TargetGroups[?Name=='web'") == "unexpected end of the query in \"TargetGroups[?Name=='web'\"")
        #expect(problem("lenght(@)")?.hasPrefix("unknown function lenght() (localnlb's --query has contains()") == true)
        #expect(problem("length(@, @)") == "length() takes 1 argument(s), 2 given")
        #expect(problem("a.'b'") == "unexpected literal \"b\" in \"a.'b'\"")
        #expect(problem("a[0:1:0]") == "a slice's step cannot be 0")
        #expect(problem("a # b") == "'#' is not part of a query at column 3")
        let outcome = ControlCommand.run([
            "describe-target-groups", "--query", "TargetGroups[", "--endpoint-url", "http://127.0.0.1:9",
        ])
        #expect(outcome.exitCode == 252 && outcome.error.contains("Bad value for --query TargetGroups["))
    }
}
