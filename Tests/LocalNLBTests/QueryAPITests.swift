import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The pieces of the ELBv2 Query API: the form decoder, the XML writer, the names AWS gives resources.
@Suite struct QueryAPIPieces {
    @Test func formsDecodePercentEscapesAndPlus() throws {
        let form = try QueryForm(
            form: Array("Action=DescribeTargetGroups&Names.member.1=web%2Dfargate&Path=%2Fa+b%C3%A9".utf8))
        #expect(form["Action"] == "DescribeTargetGroups")
        #expect(form.list("Names") == ["web-fargate"])
        #expect(form["Path"] == "/a bé")
        func problem(_ body: [UInt8]) -> String? {
            do {
                _ = try QueryForm(form: body)
                return nil
            } catch { return "\(error.code): \(error.message)" }
        }
        #expect(
            problem(Array("Names.member.1=%zz".utf8))?.hasPrefix("MalformedQueryString: parameter Names.member.1")
                == true)
        #expect(problem(Array("Names.member.1=%4".utf8)) != nil)
        #expect(problem(Array("a=%FF%FE".utf8)) != nil)  // escaped, not UTF-8
        // Raw bytes that are not UTF-8.
        #expect(
            problem(Array("Name=web".utf8) + [0xFF, 0xFE])
                == "MalformedQueryString: parameter Name: a broken %-escape, or text that is not UTF-8")
    }

    /// `member.N` lists stop at the first gap; nested structures read their fields.
    @Test func memberListsAndStructures() throws {
        let form = try QueryForm(
            form: Array(
                ("Targets.member.1.Id=127.0.0.1&Targets.member.1.Port=9001&Targets.member.2.Id=i-0abc"
                    + "&Targets.member.4.Id=skipped&Attributes.member.1.Key=stickiness.enabled"
                    + "&Attributes.member.1.Value=true&Names.member.2=gap").utf8))
        #expect(
            form.structures("Targets", fields: ["Id", "Port"]) == [
                ["Id": "127.0.0.1", "Port": "9001"], ["Id": "i-0abc"],
            ])
        #expect(
            form.structures("Attributes", fields: ["Key", "Value"]) == [["Key": "stickiness.enabled", "Value": "true"]])
        #expect(form.list("Names").isEmpty)
    }

    @Test func xmlEscapesEveryMarkupCharacter() {
        #expect(
            XML.text("Message", #"<a href="x">&'</a>"#)
                == "<Message>&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;</Message>")
        #expect(XML.list("Names", ["a", "b"]) == "<Names><member>a</member><member>b</member></Names>")
    }

    /// ARNs as AWS forms them, the same on every start (derived from the names).
    @Test func namesAreAWSShapedAndStable() {
        let names = ResourceNames(region: "eu-west-1", accountID: "123456789012")
        let arn = names.loadBalancer("web-nlb")
        #expect(arn.hasPrefix("arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/web-nlb/"))
        #expect(arn.split(separator: "/").last!.count == 16)
        #expect(arn == ResourceNames(region: "eu-west-1", accountID: "123456789012").loadBalancer("web-nlb"))
        #expect(names.dnsName("web-nlb") == "web-nlb-\(arn.split(separator: "/").last!).elb.eu-west-1.amazonaws.com")
        let listener = names.listener(loadBalancer: "web-nlb", port: 80)
        #expect(listener.split(separator: "/").count == 5 && listener.contains(":listener/net/web-nlb/"))
        #expect(names.name(in: names.targetGroup("web"), kind: "targetgroup") == "web")
        #expect(names.name(in: names.targetGroup("web"), kind: "loadbalancer/net") == nil)
        #expect(names.canonicalHostedZoneID == "Z2IFOLAFXWLO4F")
        #expect(names.vpcID.count == 21 && names.vpcID.hasPrefix("vpc-"))
    }

    @Test func regionAndAccountAreChecked() {
        #expect(
            problems(#"{"Admin": {"Region": "Mars", "AccountId": "12"}, "Listeners": []}"#).filter {
                $0.hasPrefix("Admin.")
            } == [
                #"Admin.Region: "Mars" is not a region such as us-east-1"#,
                #"Admin.AccountId: "12" is not a 12-digit AWS account id"#,
            ])
    }
}

/// Regions kept apart: a resource made in another region than `Admin.Region` is `name.region` in the
/// model, and AWS's names, ARNs and DNS names come back out of that.
@Suite struct RegionNames {
    let names = ResourceNames(region: "us-east-1", accountID: "123456789012")

    @Test func anotherRegionsResourceHasItsRegionsARNAndDNSName() {
        let modelName = names.qualified("web", region: "eu-west-1")
        #expect(modelName == "web.eu-west-1" && names.qualified("web", region: "us-east-1") == "web")
        let arn = names.targetGroup(modelName)
        #expect(arn.hasPrefix("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/"))
        #expect(arn != names.targetGroup("web"))
        #expect(names.name(in: arn, kind: "targetgroup") == modelName)
        #expect(names.name(in: names.targetGroup("web"), kind: "targetgroup") == "web")
        #expect(names.dnsName(names.qualified("lb", region: "eu-west-1")).hasSuffix(".elb.eu-west-1.amazonaws.com"))
        // Another account's ARN, or no region at all, names nothing here.
        #expect(
            names.name(in: arn.replacingOccurrences(of: "123456789012", with: "000000000000"), kind: "targetgroup")
                == nil)
        #expect(
            names.name(in: "arn:aws:elasticloadbalancing::123456789012:targetgroup/web/1", kind: "targetgroup") == nil)
    }

    @Test func theFileKeepsThemAndRequestsCannotForgeThem() throws {
        let file = """
            { "TargetGroups": [ { "Name": "web.eu-west-1", "Port": 80, "TargetType": "ip" },
                                { "Name": "web", "Port": 80, "TargetType": "ip" } ] }
            """
        #expect(try load(file).configuration.targetGroups.map(\.name) == ["web.eu-west-1", "web"])
        #expect(
            problems(file.replacingOccurrences(of: "web.eu-west-1", with: "web.mars")) == [
                #"TargetGroups[0].Name: "web.mars": after the dot comes another region than Admin.Region (web.eu-west-1)"#
            ])
        let model = try load(document()).configuration
        let forged = #expect(throws: APIError.self) {
            try model.applying(
                .createTargetGroup(
                    Given("CreateTargetGroup", .object(["Name": .string("web.eu-west-1"), "Port": .string("80")]))))
        }
        #expect(forged?.message.contains("has a dot") == true)
        let made = try model.applying(
            .createTargetGroup(
                Given(
                    "CreateTargetGroup",
                    .object(["Name": .string("web"), "Port": .string("80"), "TargetType": .string("ip")])),
                region: "eu-west-1"))
        #expect(made.model.targetGroups.contains { $0.name == "web.eu-west-1" })
    }
}
