package satellite

// Internal metadata geometry of DRBD 9 with its defaults, as LINSTOR's
// MetaData.java uses them (research/linstor-server.md §2): a 4 KiB superblock,
// one 32 KiB activity-log stripe, and a bitmap of one bit per 4 KiB block
// for each peer slot.
const (
	superblockKiB  = 4
	activityLogKiB = 32
	// bitmapChunkKiB is the data one 4 KiB page of a peer's bitmap
	// covers: 4096 bytes * 8 bits * 4 KiB per bit = 128 MiB.
	bitmapChunkKiB = 128 << 10
	alignKiB       = 4
)

// MetaDataKiB is the size of DRBD's internal metadata on a backing device of
// deviceKiB with peers peer slots. It is the DRBD 9 user's guide's exact
// formula (§23.1.3, "Calculating DRBD meta data size (exactly)"),
//
//	Ms = ceil(Cs / 2^18) * 8 * N + 72   (sectors)
//
// in KiB: ceil(C / 128 MiB) * 4 KiB * N + 36 KiB, where the 36 KiB are the
// activity log and the superblock. It is never smaller than LINSTOR's finer
// 8-byte-granular bitmap sum, so a volume sized with it holds at least what
// a LINSTOR-sized one does.
func MetaDataKiB(deviceKiB int64, peers int) int64 {
	if peers < 1 {
		peers = 1
	}
	chunks := (deviceKiB + bitmapChunkKiB - 1) / bitmapChunkKiB
	return chunks*4*int64(peers) + activityLogKiB + superblockKiB
}

// GrossKiB is the backing device size a DRBD volume of netKiB usable KiB
// needs with internal metadata for peers peer slots: the smallest multiple
// of 4 KiB (DRBD's alignment) whose size minus its own metadata holds
// netKiB. The metadata depends on the device size, so the size is raised
// until it fits; that takes at most a couple of rounds.
func GrossKiB(netKiB int64, peers int) int64 {
	gross := roundUp(netKiB+MetaDataKiB(netKiB, peers), alignKiB)
	for gross-MetaDataKiB(gross, peers) < netKiB {
		gross = roundUp(netKiB+MetaDataKiB(gross, peers), alignKiB)
	}
	return gross
}

// roundUp rounds n up to a multiple of unit (unit ≤ 0 leaves n).
func roundUp(n, unit int64) int64 {
	if unit <= 0 {
		return n
	}
	return (n + unit - 1) / unit * unit
}
