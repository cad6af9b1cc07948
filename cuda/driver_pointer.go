package cuda

var _ Pointers = (*Driver)(nil)

// DevicePointer returns allocation h's device address.
func (d *Driver) DevicePointer(h Handle) (uintptr, error) {
	a, err := d.lookup("device pointer", h, 0, 0)
	if err != nil {
		return 0, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.freed {
		return 0, driverFreedError(d.dev.index, "device pointer", h)
	}
	return uintptr(a.ptr), nil
}
