import ArgumentParser
import WyrcanChain

/// `wyrcan volume pull|push|sync`: the volume mirror engine, standalone.
struct Volume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync a directory with an S3 bucket, as the boot agent does for wyr.volume.",
        discussion: """
            The volume and its S3 alias use the cmdline syntax (wyr.volume= and wyr.s3=, or \
            boot2container's b2c.volume= and b2c.minio=), given as options or read from a file of \
            such parameters (--config; keep secrets there, not on a command line that `ps` shows).

            Files that are the same on both sides are not transferred. A file that differs is \
            replaced only with the volume's `overwrite` option; `remove` deletes on the destination \
            only what the last sync saw on both sides. When both sides changed a file since the last \
            sync, the mirror's version keeps the name and the local edit is kept beside it as \
            NAME.conflict-TIMESTAMP. The last sync is recorded in DIR/.wyrcan-sync.json.

            EXAMPLES
              wyrcan volume pull --s3 'store,http://127.0.0.1:9000,KEY,SECRET' --volume 'data,mirror=store/bucket/host1' ./data
              wyrcan volume push --config /etc/wyrcan/volumes.conf --name data
            """,
        subcommands: [Pull.self, Push.self, Sync.self, Watch.self])

    enum Direction { case pull, push, sync }

    struct Options: ParsableArguments {
        @Option(help: ArgumentHelp("The volume, as wyr.volume's value.", valueName: "NAME,mirror=ALIAS/BUCKET[/PREFIX][,overwrite][,remove][,exclude=GLOB]"))
        var volume: String?

        @Option(help: ArgumentHelp("An S3 alias, as wyr.s3's value (repeatable).", valueName: "ALIAS,URL,ACCESS_KEY,SECRET_KEY"))
        var s3: [String] = []

        @Option(help: ArgumentHelp("A file of wyr.s3= and wyr.volume= parameters (cmdline syntax).", valueName: "FILE"))
        var config: String?

        @Option(help: ArgumentHelp("With --config: only this volume (default: all of them).", valueName: "NAME"))
        var name: String?

        @Option(help: "Concurrent transfers.")
        var jobs = 8

        @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM file of CAs to trust for an https:// endpoint.", valueName: "FILE"))
        var caFile: String?

        @Option(help: "SigV4 region.")
        var region = "us-east-1"

        @Flag(name: .shortAndLong, help: "Print only errors and the summary.")
        var quiet = false

        @Argument(help: ArgumentHelp("The local directory (default: the volume's path=, /var/lib/wyrcan/volumes/NAME).", valueName: "DIR"))
        var directory: String?

        /// The volumes to sync with their S3 aliases, from the options and the config file.
        func resolve() throws -> [(VolumeSpec, S3Alias)] {
            func parameter(_ key: String, _ value: String) throws -> String {
                guard let p = KernelCmdline.render(key: key, value: value) else { throw ValidationError("\(key) cannot hold a '\"'") }
                return p
            }
            var text = try s3.map { try parameter("wyr.s3", $0) }
            if let volume { text.append(try parameter("wyr.volume", volume)) }
            if let config {
                let contents = String(decoding: try FileSystem.readFile(config), as: UTF8.self)
                text.insert(contents.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("#") }.joined(separator: " "), at: 0)
            }
            let args = try WyrcanArgs(parsing: text.joined(separator: " "))
            var volumes = args.volumes
            if let name { volumes = volumes.filter { $0.name == name } }
            guard !volumes.isEmpty else {
                throw ValidationError(name.map { "no volume named \($0)" } ?? "give a volume with --volume or --config")
            }
            if directory != nil && volumes.count > 1 { throw ValidationError("DIR needs a single volume (use --name)") }
            return try volumes.map { v in
                guard let mirror = v.mirror else { throw ValidationError("volume \(v.name) has no mirror=ALIAS/BUCKET") }
                guard let alias = args.s3.first(where: { $0.alias == mirror.alias }) else {
                    throw ValidationError("volume \(v.name): S3 alias \(Message.quoted(mirror.alias)) is not defined (add --s3 \(mirror.alias),URL,KEY,SECRET)")
                }
                return (v, alias)
            }
        }

        func run(_ direction: Direction) throws {
            do {
                for (volume, alias) in try resolve() {
                    let client = try S3Client(alias: alias, region: region, caFile: caFile)
                    let quiet = self.quiet
                    var mirror = VolumeMirror(volume: volume, client: client, directory: directory ?? volume.path) { line in
                        if !quiet { printError(line) }
                    }
                    mirror.width = max(1, jobs)
                    let report: VolumeMirror.Report
                    switch direction {
                    case .pull: report = try mirror.pull()
                    case .push: report = try mirror.push()
                    case .sync: report = try mirror.sync()
                    }
                    print("\(volume.name): \(report.summary)")
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                printError("wyrcan: error: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bucket → directory.")
        @OptionGroup var options: Options
        func run() throws { try options.run(.pull) }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Directory → bucket.")
        @OptionGroup var options: Options
        func run() throws { try options.run(.push) }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pull, then push.")
        @OptionGroup var options: Options
        func run() throws { try options.run(.sync) }
    }
}
