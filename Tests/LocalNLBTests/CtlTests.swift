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
