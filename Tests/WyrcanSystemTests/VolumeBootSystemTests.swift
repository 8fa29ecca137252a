import Foundation
import Testing

/// Volumes across the kexec boundary, in QEMU: boot 1 writes into a push_on=shutdown volume and
/// pushes it as it powers off; boot 2 gets it back through pull_on=boot.
@Suite(.serialized) struct VolumeBootSystemTests {
    /// A bootable image with network (Wyrcan's own tree: busybox, drivers, udhcpc) whose /init
    /// reports the volume's file if it is there, else writes it and pushes before powering off.
    static func buildImage(in dir: String) throws -> String {
        let layout = dir + "/volume-image"
        try? FileManager.default.removeItem(atPath: layout)
        try FileManager.default.copyItem(atPath: Sys.root + "/out/wyrcan-oci", toPath: layout)
        let initScript = dir + "/volume-init"
        try """
            #!/bin/sh
            mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
            exec </dev/console >/dev/console 2>&1
            /usr/lib/wyrcan/wyrcan modprobe virtio_pci virtio_net
            for i in /sys/class/net/e*; do n=${i##*/}; ip link set "$n" up; udhcpc -i "$n" -s /etc/wyrcan/udhcpc.script -q -n -t 5 >/dev/null; done
            V=/var/lib/wyrcan/volumes/notes
            if [ -f "$V/boot1.txt" ]; then
              echo "VOLUME-FOUND: $(cat "$V/boot1.txt")"
            else
              echo "written by boot 1" > "$V/boot1.txt"
              echo VOLUME-WROTE
              /usr/lib/wyrcan/push-volumes && echo VOLUME-PUSHED
            fi
            poweroff -f

            """.write(toFile: initScript, atomically: true, encoding: .utf8)
        chmod(initScript, 0o755)
        let r = try Sys.run("/usr/bin/umoci", ["insert", "--image", layout + ":latest", initScript, "/init"])
        guard r.status == 0 else { throw SysError("umoci insert: \(r.stderr)") }
        return layout
    }

    @Test(.timeLimit(.minutes(12)))
    func aVolumePushedAtShutdownIsThereAtTheNextBoot() throws {
        let rig = try BootSystemTests.rig()
        let s3 = try LocalS3(name: "boot")
        try rig.registry.push(layout: try Self.buildImage(in: rig.dir), tag: "latest", to: "test/volume")
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/volume wyr.insecure=\(rig.guestRegistry) "
            + "wyr.s3=store,http://10.0.2.2:\(s3.port),\(LocalS3.accessKey),\(LocalS3.secretKey) "
            + "wyr.volume=notes,mirror=store/bucket/vm1,pull_on=boot,push_on=shutdown wyr.arg=console=ttyS0"

        let (first, _) = try rig.boot("volume-1", cmdline: cmdline)
        #expect(first.contains("Pulling volume notes"), "\(first.suffix(3000))")
        #expect(first.contains("VOLUME-WROTE") && first.contains("VOLUME-PUSHED"), "\(first.suffix(3000))")
        #expect(try s3.listing() == ["vm1/boot1.txt": 18])
        #expect(try s3.aws("s3 cp s3://bucket/vm1/boot1.txt -").stdout == "written by boot 1\n")

        let (second, _) = try rig.boot("volume-2", cmdline: cmdline)
        #expect(second.contains("VOLUME-FOUND: written by boot 1"), "\(second.suffix(3000))")
        // The secret never reaches the booted system's cmdline.
        let booted = second.components(separatedBy: "Booting ").last ?? ""
        #expect(!booted.contains(LocalS3.secretKey))
    }

    /// wyr.cache: boot 1 formats a blank disk and the image writes into the volume on it (no push
    /// from the booted system); boot 2 mounts the same filesystem, pushes what boot 1 wrote
    /// (push_on=boot), pulls what appeared remotely onto the disk, and the image sees both; a local
    /// volume with expiration=shutdown starts empty again; boot 3 finds the disk by its label
    /// (wyr.cache=auto).
    @Test(.timeLimit(.minutes(12)))
    func aCacheDiskKeepsTheVolumeAndPushesItAtTheNextBoot() throws {
        let rig = try BootSystemTests.rig()
        let s3 = try LocalS3(name: "cache")
        let layout = rig.dir + "/cache-image"
        try? FileManager.default.removeItem(atPath: layout)
        try FileManager.default.copyItem(atPath: Sys.root + "/out/wyrcan-oci", toPath: layout)
        let initScript = rig.dir + "/cache-init"
        try """
            #!/bin/sh
            mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
            exec </dev/console >/dev/console 2>&1
            /usr/lib/wyrcan/wyrcan modprobe virtio_pci virtio_blk ext4
            [ -x /usr/lib/wyrcan/push-volumes ] && echo PUSHER-INJECTED
            [ -x /usr/lib/wyrcan/mount-volumes ] || { echo NO-CACHE-SCRIPT; poweroff -f; }
            /usr/lib/wyrcan/mount-volumes && echo CACHE-MOUNTED
            V=/var/lib/wyrcan/volumes/notes
            S=/var/lib/wyrcan/volumes/scratch
            if [ -f "$V/boot1.txt" ]; then
              echo "VOLUME-FOUND: $(cat "$V/boot1.txt") / $(cat "$V/remote.txt")"
              [ -e "$S/left.txt" ] || echo SCRATCH-EMPTY
            else
              echo "written by boot 1" > "$V/boot1.txt"
              echo left > "$S/left.txt"
              echo VOLUME-WROTE
            fi
            /usr/lib/wyrcan/mount-volumes --unmount && echo CACHE-UNMOUNTED
            sync; poweroff -f

            """.write(toFile: initScript, atomically: true, encoding: .utf8)
        chmod(initScript, 0o755)
        let r = try Sys.run("/usr/bin/umoci", ["insert", "--image", layout + ":latest", initScript, "/init"])
        guard r.status == 0 else { throw SysError("umoci insert: \(r.stderr)") }
        try rig.registry.push(layout: layout, tag: "latest", to: "test/cache")
        let disk = rig.dir + "/cache-disk.img"
        try? FileManager.default.removeItem(atPath: disk)
        #expect(FileManager.default.createFile(atPath: disk, contents: nil))
        try FileHandle(forWritingAtPath: disk)!.truncate(atOffset: 256 << 20)
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/test/cache wyr.insecure=\(rig.guestRegistry) "
            + "wyr.s3=store,http://10.0.2.2:\(s3.port),\(LocalS3.accessKey),\(LocalS3.secretKey) wyr.cache=/dev/vda,format "
            + "wyr.volume=notes,mirror=store/bucket/vm2,pull_on=boot,push_on=boot wyr.volume=scratch,expiration=shutdown "
            + "wyr.arg=console=ttyS0"

        let (first, _) = try rig.boot("cache-1", cmdline: cmdline, disk: disk)
        #expect(first.contains("formatting /dev/vda"), "\(first.suffix(3000))")
        #expect(first.contains("CACHE-MOUNTED") && first.contains("VOLUME-WROTE") && first.contains("CACHE-UNMOUNTED"), "\(first.suffix(3000))")
        #expect(try s3.listing().isEmpty, "nothing is pushed from the booted system")
        let uuid = try Sys.sh("/sbin/blkid -o value -s UUID \(disk)").stdout

        try "from S3\n".write(toFile: rig.dir + "/remote.txt", atomically: true, encoding: .utf8)
        #expect(try s3.aws("s3 cp \(rig.dir)/remote.txt s3://bucket/vm2/remote.txt").status == 0)
        let (second, _) = try rig.boot("cache-2", cmdline: cmdline, disk: disk)
        #expect(!second.contains("formatting"), "\(second.suffix(3000))")
        #expect(second.contains("Pushing volume notes"), "\(second.suffix(3000))")
        #expect(second.contains("VOLUME-FOUND: written by boot 1 / from S3"), "\(second.suffix(3000))")
        #expect(second.contains("SCRATCH-EMPTY"), "an expiration=shutdown volume starts empty")
        #expect(try s3.aws("s3 cp s3://bucket/vm2/boot1.txt -").stdout == "written by boot 1\n")
        #expect(try Sys.sh("/sbin/blkid -o value -s UUID \(disk)").stdout == uuid, "the filesystem is the same one")

        // wyr.cache=auto finds the same disk by its label.
        let auto = cmdline.replacingOccurrences(of: "wyr.cache=/dev/vda,format", with: "wyr.cache=auto")
        let (third, _) = try rig.boot("cache-3", cmdline: auto, disk: disk)
        #expect(third.contains("/dev/vda (label WYRCAN_CACHE, UUID \(uuid.trimmingCharacters(in: .whitespacesAndNewlines))) mounted"), "\(third.suffix(3000))")
        #expect(third.contains("VOLUME-FOUND: written by boot 1 / from S3"), "\(third.suffix(3000))")

        // auto without any disk: the volumes stay in RAM and push_on=boot becomes a shutdown push.
        let (fourth, _) = try rig.boot("cache-4", cmdline: auto)
        #expect(fourth.contains("no disk labelled WYRCAN_CACHE: the volumes stay in RAM"), "\(fourth.suffix(3000))")
        #expect(fourth.contains("volume notes: no cache disk, so pushed at shutdown instead of at the next boot"), "\(fourth.suffix(3000))")
        #expect(fourth.contains("PUSHER-INJECTED") && fourth.contains("NO-CACHE-SCRIPT"), "\(fourth.suffix(3000))")
        #expect(!first.contains("PUSHER-INJECTED"), "with the disk, push_on=boot needs no pusher in the booted system")

        // A disk with something on it that is not ext2/3/4 is never formatted, even with ,format.
        let used = rig.dir + "/used-disk.img"
        _ = try Sys.sh("truncate -s 64M \(used) && printf 'SWAPSPACE2' | dd of=\(used) bs=1 seek=4086 conv=notrunc status=none")
        let (refused, _) = try rig.boot("cache-refused", cmdline: cmdline, timeout: 90, disk: used)
        #expect(refused.contains("holds data that is not an ext2/3/4 filesystem"), "\(refused.suffix(3000))")
        #expect(try Sys.sh("od -An -c -j 4086 -N 10 \(used) | tr -d ' \\n'").stdout == "SWAPSPACE2")
    }

    /// The same with a systemd image (examples/debian, built from Debian's mirror): the unit Wyrcan
    /// injects pushes in its ExecStop when the system powers off. With a cache disk, the volume is
    /// a bind mount from it (wyrcan-cache.service), still mounted when that push runs.
    @Test(.timeLimit(.minutes(15)), arguments: [false, true])
    func theInjectedSystemdUnitPushesAtShutdown(onCacheDisk: Bool) throws {
        let rig = try BootSystemTests.rig()
        let s3 = try LocalS3(name: "systemd")
        let layout = rig.dir + "/debian"
        if !FileManager.default.fileExists(atPath: layout + "/index.json") {
            // (With --sign-key: the examples' Secure Boot step, checked here because this test
            // builds the image anyway; the kernel's signature does not matter without Secure Boot.)
            let key = rig.dir + "/snakeoil-db.key"
            _ = try Sys.run("/usr/bin/openssl", ["pkey", "-in", "/usr/share/ovmf/PkKek-1-snakeoil.key", "-passin", "pass:snakeoil", "-out", key])
            let built = try Sys.run(Sys.root + "/examples/debian/build", [layout, "--sign-key", key, "--sign-cert", SecureBootSystemTests.dbCert])
            guard built.status == 0 else { throw SysError("examples/debian/build: \(built.stderr.suffix(2000))") }
            let converted = rig.dir + "/debian-converted"
            _ = try Sys.run(Sys.binary("wyrcan"), ["convert", "oci:\(layout):latest", "--output", converted])
            let verified = try Sys.run("/usr/bin/sbverify", ["--cert", SecureBootSystemTests.dbCert, converted + "/kernel"])
            #expect(verified.status == 0, "the image's kernel is not signed by --sign-key: \(verified.stderr)\(built.stderr.suffix(1000))")
            try? FileManager.default.removeItem(atPath: converted)
        }
        // A unit that writes into the volume (or reports what it found) and powers off — after
        // the up report (itself after multi-user.target: ordered only after wyrcan-up.service,
        // the target's implicit ordering on the units it wants would make a cycle).
        let extra = rig.dir + "/debian-extra"
        try? FileManager.default.removeItem(atPath: extra)
        try FileManager.default.createDirectory(atPath: extra + "/etc/systemd/system/multi-user.target.wants", withIntermediateDirectories: true)
        try """
            [Unit]
            After=wyrcan-volumes.service network-online.target multi-user.target wyrcan-up.service
            Wants=network-online.target
            [Service]
            Type=oneshot
            ExecStart=/bin/sh -c 'V=/var/lib/wyrcan/volumes/notes; grep " $V " /proc/mounts > /dev/console; if [ -f $V/boot1.txt ]; then echo "VOLUME-FOUND: $(cat $V/boot1.txt)" > /dev/console; else echo "written under systemd" > $V/boot1.txt; echo VOLUME-WROTE > /dev/console; fi; systemctl --no-block poweroff'
            [Install]
            WantedBy=multi-user.target

            """.write(toFile: extra + "/etc/systemd/system/volume-check.service", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: extra + "/etc/systemd/system/multi-user.target.wants/volume-check.service",
                                                   withDestinationPath: "../volume-check.service")
        let inserted = try Sys.run("/usr/bin/umoci", ["insert", "--image", layout + ":latest", extra, "/"])
        guard inserted.status == 0 else { throw SysError("umoci insert: \(inserted.stderr)") }
        try rig.registry.push(layout: layout, tag: "latest", to: "examples/debian")
        // Reports to wyrcan-serve: the booted system's own `up` comes through the injected unit.
        let serve = try ServeSystemTests.Server(name: "up-\(onCacheDisk)")
        let report = try ServeSystemTests.reportURL(port: serve.port, mac: "52:54:00:12:34:56")
        let cmdline = "console=ttyS0 wyr.img=\(rig.guestRegistry)/examples/debian wyr.insecure=\(rig.guestRegistry) "
            + "wyr.s3=store,http://10.0.2.2:\(s3.port),\(LocalS3.accessKey),\(LocalS3.secretKey) "
            + "wyr.volume=notes,mirror=store/bucket/vm1,pull_on=boot,push_on=shutdown wyr.report=\(report)"
            + (onCacheDisk ? " wyr.cache=/dev/vda,format" : "")
        let disk = rig.dir + "/systemd-cache.img"
        try? FileManager.default.removeItem(atPath: disk)
        _ = try Sys.sh("truncate -s 256M \(disk)")
        let name = onCacheDisk ? "systemd-cache" : "systemd-volume"

        let (first, _) = try rig.boot(name + "-1", cmdline: cmdline, timeout: 300, disk: onCacheDisk ? disk : nil)
        #expect(first.contains("VOLUME-WROTE"), "\(first.suffix(3000))")
        #expect(first.contains("Stopped") && first.contains("wyrcan-volumes"), "\(first.suffix(3000))")
        #expect(try s3.aws("s3 cp s3://bucket/vm1/boot1.txt -").stdout == "written under systemd\n")
        let host = try JSONSerialization.jsonObject(with: Data(try Sys.sh("curl -s http://127.0.0.1:\(serve.port)/v1/hosts/52:54:00:12:34:56").stdout.utf8)) as? [String: Any]
        let boot = (host?["boots"] as? [[String: Any]])?.first
        let stages = (boot?["reports"] as? [[String: Any]])?.compactMap { $0["stage"] as? String } ?? []
        // (Wyrcan's first report that arrives is "network": "booting" is sent before the network is up.)
        #expect(stages.first == "network" && stages.contains("kexec") && stages.last == "up" && boot?["duration"] is Double, "\(String(describing: host))")
        #expect(try Sys.sh("curl -s http://127.0.0.1:\(serve.port)/metrics").stdout.contains("wyrcan_boot_duration_seconds_count 1\n"))

        let (second, _) = try rig.boot(name + "-2", cmdline: cmdline, timeout: 300, disk: onCacheDisk ? disk : nil)
        #expect(second.contains("VOLUME-FOUND: written under systemd"), "\(second.suffix(3000))")
        if onCacheDisk {
            // The booted system had the volume as a bind mount of the cache disk.
            #expect(second.contains("/dev/vda /var/lib/wyrcan/volumes/notes ext4"), "\(second.suffix(3000))")
            #expect(try Sys.sh("/sbin/debugfs -R 'cat /volumes/notes/boot1.txt' \(disk) 2>/dev/null").stdout == "written under systemd\n")
        }
    }
}
