package satellite

import "testing"

func TestMetaDataAndGrossSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		netKiB      int64
		peers       int
		mdKiB       int64 // MetaDataKiB(netKiB, peers)
		grossKiB    int64
		roundedKiB  int64 // to 4 MiB extents
		description string
	}{
		// 8 bitmap pages of 4 KiB per peer + 32 KiB AL + 4 KiB superblock;
		// the gross device needs a 9th page per peer.
		{1 << 20, 7, 8*4*7 + 36, 1<<20 + 9*4*7 + 36, 1052672, "1 GiB, LINSTOR's 7 peer slots"},
		{1 << 20, 1, 8*4 + 36, 1<<20 + 9*4 + 36, 1052672, "1 GiB, one peer"},
		{100 << 20, 7, 800*4*7 + 36, 100<<20 + 801*4*7 + 36, 104882176, "100 GiB"},
		{100 << 20, 31, 800*4*31 + 36, 100<<20 + 801*4*31 + 36, 104960000, "100 GiB, 31 peers (~97 MiB, research §2)"},
		{4, 7, 4*7 + 36, 4 + 4*7 + 36, 4096, "tiny"},
	}
	for _, tc := range tests {
		if got := MetaDataKiB(tc.netKiB, tc.peers); got != tc.mdKiB {
			t.Errorf("%s: MetaDataKiB = %d, want %d", tc.description, got, tc.mdKiB)
		}
		gross := GrossKiB(tc.netKiB, tc.peers)
		if gross != tc.grossKiB {
			t.Errorf("%s: GrossKiB = %d, want %d", tc.description, gross, tc.grossKiB)
		}
		if gross-MetaDataKiB(gross, tc.peers) < tc.netKiB || gross%4 != 0 {
			t.Errorf("%s: gross %d does not hold %d KiB of data or is not 4 KiB aligned", tc.description, gross, tc.netKiB)
		}
		if smaller := gross - 4; smaller-MetaDataKiB(smaller, tc.peers) >= tc.netKiB {
			t.Errorf("%s: gross %d is not the smallest: %d would do", tc.description, gross, smaller)
		}
		if got := roundUp(gross, 4096); got != tc.roundedKiB {
			t.Errorf("%s: rounded = %d, want %d", tc.description, got, tc.roundedKiB)
		}
	}
}
