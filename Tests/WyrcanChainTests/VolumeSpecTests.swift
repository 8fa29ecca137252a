import Foundation
import Testing
@testable import WyrcanChain

@Suite struct VolumeSpecTests {
    @Test func fullSpec() throws {
        let v = try VolumeSpec(parsing: "data,mirror=s3/fleet-data/hosts/web1,pull_on=boot,push_on=changes,push_on=shutdown,overwrite,remove,exclude=*.tmp,exclude=cache/*,path=/srv/data,expiration=never")
        #expect(v.name == "data")
        #expect(v.mirror == .init(alias: "s3", bucket: "fleet-data", prefix: "hosts/web1"))
        #expect(v.pullOn == [.boot])
        #expect(v.pushOn == [.changes, .shutdown])
        #expect(v.overwrite && v.remove)
        #expect(v.exclude == ["*.tmp", "cache/*"])
        #expect(v.path == "/srv/data")
    }

    @Test func defaults() throws {
        let v = try VolumeSpec(parsing: "scratch")
        #expect(v.mirror == nil)
        #expect(v.path == "/var/lib/wyrcan/volumes/scratch")
        #expect(v.pullOn.isEmpty && v.pushOn.isEmpty)
    }

    @Test func boot2ContainerSpelling() throws {
        let a = try WyrcanArgs(parsing: "wyr.img=r.io/x b2c.minio=job,http://10.0.2.2:9000,AK,SK b2c.volume=cache,mirror=job/bucket,pull_on=pipeline_start,push_on=pipeline_end")
        #expect(a.s3.map(\.alias) == ["job"])
        #expect(a.volumes.first?.pullOn == [.boot])
        #expect(a.volumes.first?.pushOn == [.shutdown])
        #expect(a.kernelParameters.isEmpty)
    }

    @Test(arguments: [
        ("../x", "volume name"),
        ("v,mirror=s3", "ALIAS/BUCKET"),
        ("v,mirror=s3/B", "ALIAS/BUCKET"),
        ("v,pull_on=never", "pull_on \"never\""),
        ("v,push_on=boot", "need mirror"),
        ("v,path=relative", "absolute"),
        ("v,path=/a/../etc", "absolute"),
        ("v,frobnicate", "unknown volume option"),
    ])
    func rejects(text: String, reason: String) {
        do {
            _ = try VolumeSpec(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description.hasPrefix("wyr.volume="))
            #expect(error.description.contains(reason), "\(error.description)")
        }
    }

    @Test func mirrorNeedsAKnownAlias() {
        #expect(throws: CmdlineError.undefinedS3Alias(parameter: "wyr.volume=v", alias: "nope")) {
            try WyrcanArgs(parsing: "wyr.volume=v,mirror=nope/bucket")
        }
    }

    @Test func s3SecretNeverInErrors() {
        do {
            _ = try S3Alias(parsing: "s3,ftp://x,AK,TOPSECRET")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("TOPSECRET"))
        }
    }
}

/// `wyr.cache`: which disk, when it may be formatted, and what the superblock says.
@Suite struct CacheSpecTests {
    @Test func parses() throws {
        #expect(try CacheSpec(parsing: "auto") == CacheSpec(source: .auto))
        #expect(try CacheSpec(parsing: "/dev/vdb") == CacheSpec(source: .device("/dev/vdb")))
        let formatted = try CacheSpec(parsing: "/dev/nvme0n1p3,format")
        #expect(formatted.format && formatted.rendered == "/dev/nvme0n1p3,format")
        #expect(try WyrcanArgs(parsing: "wyr.img=r.io/x wyrcan.cache=auto").cache?.source == .auto)
    }

    @Test(arguments: [
        ("sdb", "block device"),
        ("/dev/", "block device"),
        ("/dev/../etc/passwd", "block device"),
        ("auto,format", "auto never formats"),
        ("/dev/sdb,wipe", "unknown option 'wipe'"),
    ])
    func rejects(_ value: String, _ reason: String) {
        #expect {
            try CacheSpec(parsing: value)
        } throws: { error in
            let text = (error as? CmdlineError)?.description ?? ""
            return text.hasPrefix("wyr.cache=\(value): ") && text.contains(reason)
        }
    }

    @Test func pushOnBootNeedsADisk() throws {
        let volume = "wyr.s3=s,http://h:9000,AK,SK wyr.volume=v,mirror=s/bucket,pull_on=boot,push_on=boot"
        #expect {
            try WyrcanArgs(parsing: "wyr.img=r.io/x " + volume)
        } throws: { error in
            (error as? CmdlineError)?.description.contains("add wyr.cache=auto or wyr.cache=/dev/DISK") == true
        }
        let plan = try BootPlan(cmdline: "wyr.img=r.io/x wyr.cache=/dev/vdb " + volume)
        #expect(plan.args.volumes.first?.pushOn == [.boot])
        #expect(plan.text().contains("Cache:     /dev/vdb"))
        #expect(plan.document.cache == "/dev/vdb")
    }
}
