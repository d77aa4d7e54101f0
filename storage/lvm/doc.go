// Package lvm reads LVM's reports and names the satellite's logical volumes.
//
// The satellite asks lvs, vgs and pvs for JSON with exact byte sizes
// (--reportformat json --units b --nosuffix, see [LVSArgs], [VGSArgs],
// [PVSArgs]) and parses the answer with [ParseLVs], [ParseVGs] and
// [ParsePVs]. LVM writes every value as a JSON string, sizes included, and
// leaves inapplicable ones empty (data_percent of a linear LV), so the
// parsers turn strings into typed fields and keep "not reported" apart
// from zero ([Percent]). A size with a unit suffix is refused rather than
// guessed at: it means the command was run without --units b.
//
// Volume names follow LINSTOR (<resource>_<volume number, 5 digits>, shared
// research linstor-server.md §2), so that LVs made by LINSTOR and by pvehci
// are the same objects after a migration. LVs pvehci creates also carry the
// tag [Tag], which lets a report tell them from LVs that Proxmox or an
// operator made in the same volume group.
package lvm
