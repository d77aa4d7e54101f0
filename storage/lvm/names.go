package lvm

import "fmt"

// Tag marks the LVs pvehci creates (lvcreate --addtag).
const Tag = "pvehci"

// VolumeLVName is the LV of volume vnr of a resource, as LINSTOR names it:
// "vm-100-disk-1_00000".
func VolumeLVName(resource string, vnr int) string {
	return fmt.Sprintf("%s_%05d", resource, vnr)
}

// DevicePath is the device node LVM creates for an active LV.
func DevicePath(vg, lv string) string {
	return "/dev/" + vg + "/" + lv
}
