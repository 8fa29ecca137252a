import ArgumentParser
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what Wyrcan would do with a kernel cmdline, without doing it.",
        discussion: """
            GRAMMAR
              The outer level follows the kernel: parameters are separated by whitespace, a double \
            quote (") toggles quoting so whitespace inside quotes does not separate, the first '=' \
            splits key from value, and there is no escape character. Every key below also works \
            with the original's long prefix 'wyrcan.' (wyrcan.img=, wyrcan.arg=, ...). Parameters \
            that are not Wyrcan's (console=ttyS0, quiet, ...) configure Wyrcan's own kernel only. \
            Nothing after a bare '--' is read.

            KEYS
              wyr.img=REF          Image to boot: [REGISTRY[:PORT]/]PATH[:TAG][@sha256:DIGEST].
                                   No registry means Docker Hub; no tag means :latest.
              wyr.arg=ARG          Repeatable. Inserted, in order, into the next kernel's cmdline
                                   after the image's own /boot/wyrcan.cmdline. Quote it to carry
                                   several parameters: wyr.arg="quiet log-buf-len=1M".
              wyr.net.[KIND.]FILE.SECTION[@N].KEY=VAL
                                   systemd-networkd file /etc/systemd/network/FILE.KIND (KIND:
                                   network (default), link, netdev) with [SECTION] KEY=VAL. A key
                                   given twice writes two lines; SECTION@1, @2, ... write further
                                   sections of the same name. Default without any: autoconf.network
                                   with [Match] Type=ether, [Network] DHCP=yes, IPv6AcceptRA=yes.
              wyr.efi=write|clear  Store the validated wyr.img/wyr.arg/wyr.net config in EFI NVRAM,
                                   or remove it. With no wyr.img, a stored config is used.
              wyr.insecure=HOST[:PORT]
                                   Repeatable. Reach this registry over plain HTTP (a lab registry).
              wyr.platform=OS/ARCH[/VARIANT]
                                   Which image of a multi-platform index to boot (default: this
                                   machine's, e.g. linux/amd64).
              wyr.rescue           After the last failed attempt, open a shell on the console
                                   instead of rebooting (wyr.rescue=0 turns it off again).
              wyr.report=URL       POST boot progress (booting, network, pulling, converted, kexec,
                                   exit, failure) to URL, e.g. wyrcan-serve's
                                   https://SERVER/v1/report/MAC.
              wyr.server=https://SERVER[:PORT]
                                   After network-up, get this machine's parameters (image, args,
                                   volumes, secrets) from SERVER/v1/config/MAC over TLS, trusting
                                   only the CA baked into the initramfs (scripts/build-uki
                                   --server-ca) or wyr.server_pin. http:// only with wyr.insecure.
              wyr.server_pin=sha256//BASE64[;sha256//BASE64...]
                                   The config server's public key (curl --pinnedpubkey's syntax).
              wyr.verify=KEYNAME[,KEYNAME...]
                                   Boot the image only if one of these keys signed it (sigstore
                                   signature in the registry). The keys are baked into the
                                   initramfs (scripts/build-initramfs --trust-key NAME=FILE).
              wyr.mode=boot|exit   exit: boot the local disk instead (EFI BootNext), as the fleet
                                   server's mode: exit says.
              wyr.volume=NAME[,mirror=ALIAS/BUCKET[/PREFIX]][,pull_on=boot][,push_on=changes|
                shutdown|periodic|boot][,overwrite][,remove][,exclude=GLOB][,path=/DIR]
                [,expiration=never|shutdown]
                                   A volume, synced with S3 when it has a mirror (boot2container's
                                   b2c.volume also works).
              wyr.s3=ALIAS,URL,ACCESS_KEY,SECRET_KEY
                                   An S3 endpoint for volume mirrors (b2c.minio also works).
              wyr.cache=auto|/dev/DISK[,format]
                                   Keep the volumes on a local disk (auto: the one labelled
                                   WYRCAN_CACHE). format formats a blank disk (ext4); a disk
                                   with anything on it is never formatted.
              wyr.depth=N          Set by Wyrcan itself when it chains to another Wyrcan.

            NESTING (chains of Wyrcan stages)
              Wyrcan booting Wyrcan is a chain: the outer wyr.arg values carry the inner stage's \
            parameters. Since '"' cannot nest, a wyr.arg value is decoded once per stage: ' becomes \
            ", \\' becomes ', \\\\ becomes \\. So single quotes are the double quotes of the next \
            stage; two stages deep they are written \\'. A chain is capped at 8 stages, and a stage \
            that would boot the same image with the same args again is refused.

            EXAMPLES
              wyrcan plan --cmdline 'console=ttyS0 wyr.img=registry.local/os/debian wyr.arg="quiet log-buf-len=1M" wyr.arg=print-fatal-signals=1'
                next kernel: quiet log-buf-len=1M print-fatal-signals=1
              wyrcan plan --cmdline 'wyr.img=registry.local/wyrcan wyr.arg=wyr.img=registry.local/debian'
                boots Wyrcan, which boots debian
              wyrcan plan --cmdline "wyr.img=reg/wyrcan wyr.arg=\\"wyr.img=reg/os wyr.arg='quiet loglevel=3'\\""
                the final kernel gets: quiet loglevel=3
              wyrcan plan --cmdline 'wyr.img=reg/os wyr.net.lan.Match.Name=eth0 wyr.net.lan.Network.Address=10.0.0.2/24 wyr.net.lan.Network.Address=10.0.0.3/24'
              wyrcan plan --proc --json
            """)

    @Option(help: ArgumentHelp("The kernel cmdline to read.", valueName: "STRING"))
    var cmdline: String?

    @Flag(help: "Read the running kernel's cmdline from /proc/cmdline.")
    var proc = false

    @Option(help: ArgumentHelp("The image's /boot/wyrcan.cmdline, which comes before the wyr.arg values.", valueName: "STRING"))
    var imageCmdline: String = ""

    @Flag(help: "Print a JSON object (keys: image, cmdline, networkFiles, efi, volumes, …).")
    var json = false

    func validate() throws {
        if (cmdline == nil) == (proc == false) {
            throw ValidationError("give exactly one of --cmdline STRING or --proc")
        }
    }

    func run() throws {
        let text: String
        if proc {
            do throws(FileError) {
                text = String(decoding: try FileSystem.readFile("/proc/cmdline"), as: UTF8.self)
            } catch {
                printError("wyrcan: error: cannot read the running kernel's cmdline: \(error)")
                throw ExitCode(1)
            }
        } else {
            text = cmdline ?? ""
        }
        do {
            let plan = try BootPlan(cmdline: text, imageCmdline: imageCmdline)
            print(json ? plan.json() : plan.text())
        } catch {
            printError("wyrcan: error: \(error.description)")
            throw ExitCode(1)
        }
    }
}

/// Prints one line on standard error (messages, progress; standard output carries results).
func printError(_ line: String) {
    var stream = StandardErrorOutput()
    print(line, to: &stream)
}

/// File descriptor 2 as a text stream, unbuffered.
struct StandardErrorOutput: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = Glibc.write(2, &bytes, bytes.count)
    }
}
