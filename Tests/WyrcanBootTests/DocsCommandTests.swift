import Foundation
import Testing

/// The commands the docs show, run as a reader would run them. Conventions (docs/development.md):
/// a ```sh block holds commands that run offline after `swift build`, one per line, and each is run
/// here through /bin/sh with the built `wyrcan` and `wyrcan-serve` first on PATH, from the package
/// root; every other block of commands is preceded by `<!-- example: needs … -->` (or README's
/// `<!-- setup: … -->` for `make demo` / `make test`, which CI runs).
@Suite struct DocsCommandTests {
    struct Block {
        var file: String
        var line: Int
        var info: String
        var lines: [String]
        /// The HTML comment on the line before the opening fence, if any.
        var marker: String?
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func documents() -> [String] {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/docs")) ?? []
        return ["README.md", "CHANGES.md", "examples/README.md", "ipxe/README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
    }

    static func blocks(in file: String) -> [Block] {
        guard let text = try? String(contentsOfFile: root + "/" + file, encoding: .utf8) else { return [] }
        let lines = text.components(separatedBy: "\n")
        var out: [Block] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else { index += 1; continue }
            let previous = index > 0 ? lines[index - 1].trimmingCharacters(in: .whitespaces) : ""
            var block = Block(file: file, line: index + 1, info: String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces), lines: [],
                              marker: previous.hasPrefix("<!--") ? previous : nil)
            index += 1
            while index < lines.count, !lines[index].hasPrefix("```") {
                block.lines.append(lines[index])
                index += 1
            }
            index += 1
            out.append(block)
        }
        return out
    }

    static var allBlocks: [Block] { documents().flatMap(blocks(in:)) }

    /// A line as a shell runs it: backslash-continued lines joined, comments and blanks skipped.
    static func commands(_ block: Block) -> [String] {
        var out: [String] = []
        var pending = ""
        for line in block.lines {
            if line.hasSuffix("\\") { pending += line.dropLast() + " "; continue }
            let command = (pending + line).trimmingCharacters(in: .whitespaces)
            pending = ""
            if !command.isEmpty && !command.hasPrefix("#") { out.append(command) }
        }
        return out
    }

    @Test func theDocsHaveRunnableCommands() {
        let runnable = Self.allBlocks.filter { $0.info == "sh" && $0.marker?.hasPrefix("<!-- setup:") != true }
        #expect(runnable.flatMap(Self.commands).count >= 10, "the ```sh blocks were not found")
    }

    @Test(arguments: allBlocks.filter { $0.info == "sh" && $0.marker?.hasPrefix("<!-- setup:") != true }.flatMap { block in
        commands(block).map { "\(block.file):\(block.line): \($0)" }
    })
    func theCommandRuns(_ entry: String) throws {
        let parts = entry.split(separator: " ", maxSplits: 1)
        let command = String(parts[1])
        #expect(command.hasPrefix("wyrcan ") || command.hasPrefix("wyrcan-serve ") || command.contains("$(wyrcan"),
                "\(parts[0]) runs something other than wyrcan or wyrcan-serve in a ```sh block")
        let bin = URL(fileURLWithPath: PlanCommandTests.binary("wyrcan")).deletingLastPathComponent().path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        p.environment = environment
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(parts[0]) exits \(p.terminationStatus): \(stderr.prefix(300))")
    }

    /// Blocks of commands that are not run say what they need; blocks that look like shell
    /// commands are either run or marked.
    @Test func otherCommandBlocksSayWhatTheyNeed() {
        let commandWords = ["scripts/", "sudo ", "qemu-system", "wyrcan ", "wyrcan-serve ", "make ", "swift ", "curl ", "skopeo ", "examples/"]
        for block in Self.allBlocks where block.info != "sh" {
            let first = block.lines.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
            let looksLikeCommands = ["console", "bash", "shell"].contains(block.info)
                || commandWords.contains { first.trimmingCharacters(in: .whitespaces).hasPrefix($0) }
            guard looksLikeCommands else { continue }
            #expect(block.marker?.hasPrefix("<!-- example: needs") == true, "\(block.file):\(block.line): a block of commands that is not ```sh needs <!-- example: needs … --> before it")
        }
    }
}
