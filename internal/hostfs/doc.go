// Package hostfs is how pvehci reads and writes host files such as
// /etc/network/interfaces, /etc/pve/corosync.conf.new, DRBD .res files and
// systemd units: atomically, with an optional backup to roll back to, and
// never through a symbolic link.
//
// Code takes an [FS] and names files by absolute path. [Root] maps those
// paths under a directory: Root("/") is the real host, and the lab's
// simulated host is Root(dir) for some dir of its own, so the same code runs
// on both.
//
// # Writes
//
// [FS.WriteFile] writes a temporary file ".NAME.tmpXXXXXXXXXXXX" in the
// target's directory (created 0600, so nothing is exposed before the mode
// is set), writes the data, sets the owner and mode, fsyncs it, renames it
// over the target and fsyncs the directory. A crash leaves either the old
// file or the new one, never a mix; at worst a temporary file is left over.
// The leading dot and the suffix keep temporary files out of globs such as
// /etc/drbd.d/*.res and /etc/network/interfaces.d/*.
//
// If the target already holds exactly the data, with the wanted mode (and
// owner, when one is asked for), WriteFile touches nothing and reports
// changed=false, so an idempotent plan can tell "already done" from "done
// now". A replaced file keeps its owner unless [WriteOptions.Owner] says
// otherwise; a new one belongs to the writing process.
//
// With [WriteOptions.Backup] the previous version is first written,
// atomically and with its own mode and owner, to NAME.bak; [FS.Restore]
// renames NAME.bak back over NAME. If NAME did not exist, a stale NAME.bak is
// removed instead, so Restore then fails with [ErrNoBackup] and the caller
// knows to remove NAME to undo. The rollback idiom is:
//
//	if err := fsys.Restore(p); errors.Is(err, hostfs.ErrNoBackup) {
//		_, err = fsys.Remove(p)
//	}
//
// Do not ask for a backup in a directory whose every file is read, such as
// /etc/network/interfaces.d when interfaces says `source …/*`: NAME.bak
// would be read too.
//
// On /etc/pve (pmxcfs) every file has mode 0640 and owner root:www-data and
// neither can be changed, so pass 0640 there; WriteFile only calls chmod or
// chown when the temporary file differs from what is wanted.
//
// # Symlinks
//
// hostfs never follows a symbolic link and never acts on one. Every path
// component below the root (each directory on the way and the final name,
// and for [FS.WriteFile] also NAME.bak) must not be a symlink; otherwise the
// operation fails with an error matching [ErrSymlink] that names the
// offending path. (Stat is the exception for the final name: like os.Lstat
// it describes a symlink rather than failing.) The check is not a separate lstat before the operation:
// each directory is opened with O_NOFOLLOW relative to the one before
// (openat), and the file is then created, opened, renamed or removed
// relative to the last directory's descriptor, so swapping a directory for a
// symlink between check and use does not redirect the write. The root
// directory itself, and the path leading to it, may contain symlinks.
//
// This protects against a symlink planted in /etc/pve or /etc/drbd.d making
// a root process overwrite some other file, and keeps a lab root from
// reaching the real host. It also means /etc/pve/local (a symlink to
// nodes/NODE) must be spelled /etc/pve/nodes/NODE.
//
// Paths must be absolute and must not contain a ".." element; "." elements
// and repeated slashes are ignored.
package hostfs
