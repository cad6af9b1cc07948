package cuda

var _ Pointers = (*Driver)(nil)

// DevicePointer returns allocation h's device address.
func (d *Driver) DevicePointer(h Handle) (uintptr, error) {
	a, err := d.lookup("device pointer", h, 0, 0)
	if err != nil {
		return 0, err
	}
	var p uintptr
	err = a.shared(d.table.name, "device pointer", h, func(ptr devicePtr) error {
		p = uintptr(ptr)
		return nil
	})
	return p, err
}
