import { createHash } from "node:crypto";
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { LabError } from "./errors";
import { run } from "./exec";
import { removeTree } from "./mounts";
import { IMAGES_DIR } from "./paths";
import { processAlive } from "./processes";
import { requireHost } from "./preflight";

/**
 * The base root filesystem every lab node boots from: Debian 12 minbase plus
 * what a Linode Debian 12 image brings to cloud-init (systemd, sshd, locales),
 * and an offline apt repository holding exactly the packages the user-data
 * installs, so `package_update`/`packages` really run at boot with no network.
 *
 * Built once per (package list, recipe) and cached; nodes mount it read-only
 * as the lower layer of an overlay, so one image serves any number of nodes.
 */

export interface BaseImageOptions {
    /** apt packages the user-data installs (e.g. redis-server, redis-sentinel, redis-tools). */
    packages: string[];
    onProgress?: (msg: string) => void;
}

export interface ImageManifest {
    key: string;
    recipeVersion: number;
    suite: string;
    basePackages: string[];
    packages: string[];
    /** The .deb files in the offline repository. */
    repoDebs: string[];
    sourcesFile: string;
    builtAt: string;
    buildSeconds: number;
}

/** Bump when the recipe changes in a way the script text does not show (e.g. a host-side step). */
export const RECIPE_VERSION = 1;
export const SUITE = "bookworm";

/**
 * What the image holds before the user-data's packages: the pieces of a
 * cloud image that cloud-init and the lab rely on. udev is left out on
 * purpose: containers do not run it and cloud-init skips `udevadm settle`
 * when it is absent.
 */
export const BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus", // hostnamectl/timedatectl, which cloud-init calls, talk over D-Bus
    "cloud-init",
    "openssh-server",
    "sudo", // cloud-init writes sudoers rules for the users it creates
    "netbase", // /etc/services, /etc/protocols
    "iproute2",
    "iputils-ping",
    "procps",
    "locales",
    "ca-certificates",
];

/** Path of the offline repository inside the image. */
export const LAB_REPO = "/opt/lab-repo";

/**
 * Run by mmdebstrap as a customize hook (rootfs as $1, with /proc, /sys and
 * /dev mounted inside it). It is hashed into the cache key, so editing it
 * rebuilds the image.
 */
export const CUSTOMIZE_SCRIPT = `#!/bin/sh
# redis-ha-lab base image customization; mmdebstrap runs it with the rootfs as $1.
set -eu
root="$1"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }

echo "I: lab: generating the en_US.UTF-8 locale (cloud-init's locale module fails without it)"
sed -i -E 's/^# *(en_US\\.UTF-8 UTF-8)$/\\1/' "$root/etc/locale.gen"
in_root locale-gen
printf 'LANG=en_US.UTF-8\\n' > "$root/etc/default/locale"

echo "I: lab: downloading $RHL_LAB_PACKAGES and what they need beyond the image"
# Recommends on: at boot cloud-init runs a plain apt-get install, which follows
# apt's default (install recommends); mmdebstrap's no-recommends setting is
# removed from the image when the build ends.
repo="$root${LAB_REPO}"
mkdir -p "$repo"
if [ -n "$RHL_LAB_PACKAGES" ]; then
  # A cache directory of its own: apt's usual one still holds every .deb
  # mmdebstrap installed, and only the missing ones belong in the repository.
  mkdir -p "$root/var/cache/lab-download/partial"
  # shellcheck disable=SC2086 # a word list on purpose; names are validated
  in_root apt-get install --download-only --yes -o APT::Install-Recommends=true \
    -o Dir::Cache::Archives=/var/cache/lab-download/ $RHL_LAB_PACKAGES
  find "$root/var/cache/lab-download" -maxdepth 1 -name '*.deb' -exec mv -t "$repo" {} +
  rm -rf "$root/var/cache/lab-download"
fi
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null)
chmod -R a+rX "$repo"

echo "I: lab: pointing apt at the offline repository only"
rm -f "$root"/etc/apt/sources.list.d/*
printf 'deb [trusted=yes] file:${LAB_REPO} ./\\n' > "$root/etc/apt/sources.list"

echo "I: lab: checking that the packages install from the offline repository alone"
in_root apt-get update -o Acquire::Languages=none
if [ -n "$RHL_LAB_PACKAGES" ]; then
  # shellcheck disable=SC2086
  in_root apt-get install --simulate --yes -o APT::Install-Recommends=true $RHL_LAB_PACKAGES > /dev/null
fi

echo "I: lab: configuring cloud-init for the NoCloud seed"
cat > "$root/etc/cloud/cloud.cfg.d/90-lab-datasource.cfg" <<'EOF'
# redis-ha-lab: each node gets a NoCloud seed in /var/lib/cloud/seed/nocloud/.
datasource_list: [ NoCloud, None ]
EOF
cat > "$root/etc/cloud/cloud.cfg.d/91-lab-apt.cfg" <<'EOF'
# redis-ha-lab: keep the offline repository. Without this cloud-init 22.4
# rewrites /etc/apt/sources.list to the public Debian mirror, which lab nodes
# cannot (and must not) reach.
apt:
  preserve_sources_list: true
EOF

echo "I: lab: enabling systemd-networkd (cloud-init renders the node's static address for it)"
in_root systemctl enable systemd-networkd.service
# The lab has no IPv6 router: without this networkd keeps eth0 "configuring"
# for ~12 s of unanswered router solicitations, holding network-online.target
# and cloud-init's network stage on every boot. The file name is the one
# cloud-init's networkd renderer gives eth0's config.
mkdir -p "$root/etc/systemd/network/10-cloud-init-eth0.network.d"
cat > "$root/etc/systemd/network/10-cloud-init-eth0.network.d/50-lab-no-ra.conf" <<'EOF'
# redis-ha-lab: no IPv6 router in the lab; do not wait for router advertisements.
[Network]
IPv6AcceptRA=no
EOF

echo "I: lab: removing per-machine identity so every node gets its own"
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root/var/lib/cloud"
printf 'localhost\\n' > "$root/etc/hostname"
printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > "$root/etc/hosts"
# No DNS: mmdebstrap copied the build host's resolvers in, and nodes must not use them.
printf '# redis-ha-lab: no DNS inside the lab\\n' > "$root/etc/resolv.conf"
`;

/**
 * Returns the rootfs of a cached base image, building it first if needed.
 * A build goes to a temporary directory that is renamed into place only when
 * complete, so a failed or interrupted build never looks like a cached image.
 */
export async function ensureBaseImage(opts: BaseImageOptions): Promise<string> {
    const progress = opts.onProgress ?? (() => undefined);
    requireHost(["mmdebstrap", "dpkg-scanpackages", "mount", "umount"]);
    const packages = normalizePackages(opts.packages);
    const key = imageKey(packages);
    const finalDir = path.join(IMAGES_DIR, key);
    const rootfs = path.join(finalDir, "rootfs");

    if (isCompleteImage(finalDir)) {
        progress(`base image ${key} is cached at ${rootfs}`);
        return rootfs;
    }

    // 0755: apt drops to its _apt user while mmdebstrap downloads into the build dir.
    await mkdir(IMAGES_DIR, { recursive: true, mode: 0o755 });
    await removeStaleBuilds();
    const buildDir = path.join(IMAGES_DIR, `.build-${key}-${process.pid}`);
    const sourcesFile = findHostAptSources();
    const started = Date.now();
    progress(`building base image ${key} (${packages.join(" ") || "no extra packages"}) from ${sourcesFile}`);

    try {
        await mkdir(buildDir, { recursive: true, mode: 0o700 });
        const hook = path.join(buildDir, "customize.sh");
        await writeFile(hook, CUSTOMIZE_SCRIPT);
        await chmod(hook, 0o755);
        const log = createWriteStream(path.join(buildDir, "build.log"));

        await run(
            [
                "mmdebstrap",
                "--mode=root",
                "--variant=minbase",
                `--include=${BASE_PACKAGES.join(",")}`,
                `--customize-hook=${hook}`,
                SUITE,
                path.join(buildDir, "rootfs"),
                sourcesFile,
            ],
            {
                env: { ...process.env, LC_ALL: "C.UTF-8", RHL_LAB_PACKAGES: packages.join(" ") },
                onLine: (line) => {
                    log.write(line + "\n");
                    if (/^[IWE]: /.test(line)) progress(line);
                },
            },
        ).finally(() => log.end());

        const repoDebs = verifyImage(path.join(buildDir, "rootfs"));
        const manifest: ImageManifest = {
            key,
            recipeVersion: RECIPE_VERSION,
            suite: SUITE,
            basePackages: BASE_PACKAGES,
            packages,
            repoDebs,
            sourcesFile,
            builtAt: new Date().toISOString(),
            buildSeconds: Math.round((Date.now() - started) / 100) / 10,
        };
        await writeFile(path.join(buildDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
        try {
            await rename(buildDir, finalDir);
        } catch (e) {
            // Another build of the same key finished first: use that one.
            if (!isCompleteImage(finalDir)) throw e;
            await removeTree(buildDir);
        }
        progress(
            `base image ${key} built in ${manifest.buildSeconds} s (${repoDebs.length} packages in the offline repo)`,
        );
        return rootfs;
    } catch (e) {
        await removeTree(buildDir).catch(() => undefined);
        const reason = e instanceof Error ? e.message : String(e);
        throw new LabError(`base image build failed: ${reason}`, e instanceof LabError ? e.detail : undefined);
    }
}

/** Reads the manifest of a cached image, given its rootfs path. */
export async function readImageManifest(rootfs: string): Promise<ImageManifest> {
    return JSON.parse(await readFile(path.join(path.dirname(rootfs), "manifest.json"), "utf8")) as ImageManifest;
}

/** The cache key: same packages and same recipe give the same image. */
export function imageKey(packages: readonly string[]): string {
    const recipe = JSON.stringify({
        recipeVersion: RECIPE_VERSION,
        suite: SUITE,
        basePackages: BASE_PACKAGES,
        packages: normalizePackages(packages),
        script: CUSTOMIZE_SCRIPT,
    });
    return createHash("sha256").update(recipe).digest("hex").slice(0, 16);
}

/** Sorted, de-duplicated, validated: the list reaches a shell word list in the hook. */
export function normalizePackages(packages: readonly string[]): string[] {
    for (const p of packages) {
        if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) throw new LabError(`invalid Debian package name "${p}"`);
    }
    return [...new Set(packages)].sort();
}

/**
 * The host's Debian apt sources, handed to mmdebstrap as its mirror argument
 * so the image comes from wherever this host gets its packages (no mirror
 * name in code).
 */
export function findHostAptSources(): string {
    const candidates = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];
    for (const file of candidates) {
        if (!existsSync(file)) continue;
        const text = readFileSync(file, "utf8");
        const usable = file.endsWith(".sources")
            ? /^\s*URIs:\s*\S+/m.test(text) && !/^\s*Enabled:\s*no\b/im.test(text)
            : /^\s*deb\s+\S+/m.test(text);
        if (usable) return file;
    }
    throw new LabError(`no Debian apt sources on this host (looked in ${candidates.join(", ")})`);
}

function isCompleteImage(dir: string): boolean {
    return existsSync(path.join(dir, "manifest.json")) && existsSync(path.join(dir, "rootfs", "etc", "os-release"));
}

/** Leftovers of builds whose process is gone (crash, SIGKILL). */
export async function removeStaleBuilds(): Promise<void> {
    if (!existsSync(IMAGES_DIR)) return;
    for (const entry of readdirSync(IMAGES_DIR)) {
        const m = /^\.build-[0-9a-f]+-(\d+)$/.exec(entry);
        if (!m) continue;
        if (processAlive(Number(m[1]))) continue;
        await removeTree(path.join(IMAGES_DIR, entry));
    }
}

/**
 * Checks the properties nodes depend on, so a recipe regression fails the
 * build instead of surfacing as a confusing boot. Returns the repo's debs.
 */
function verifyImage(rootfs: string): string[] {
    const at = (p: string) => path.join(rootfs, p);
    const fail = (why: string) => {
        throw new LabError(`image check failed: ${why}`);
    };
    if (statSync(at("etc/machine-id")).size !== 0) fail("/etc/machine-id is not empty");
    if (readdirSync(at("etc/ssh")).some((f) => f.startsWith("ssh_host_"))) fail("SSH host keys are baked in");
    if (!existsSync(at("etc/cloud/cloud.cfg.d/90-lab-datasource.cfg"))) fail("datasource config missing");
    const sources = readFileSync(at("etc/apt/sources.list"), "utf8").trim();
    if (sources !== `deb [trusted=yes] file:${LAB_REPO} ./`) fail(`unexpected apt sources: ${sources}`);
    if (readdirSync(at("etc/apt/sources.list.d")).length > 0) fail("extra files in /etc/apt/sources.list.d");
    if (!existsSync(at(`${LAB_REPO}/Packages`))) fail("offline repository has no Packages index");
    const status = readFileSync(at("var/lib/dpkg/status"), "utf8");
    if (/^Package: redis-(server|sentinel)$/m.test(status)) fail("redis is installed in the base image");
    if (!existsSync(at("usr/lib/locale/locale-archive"))) fail("no compiled locales");
    return readdirSync(at(LAB_REPO))
        .filter((f) => f.endsWith(".deb"))
        .sort();
}
