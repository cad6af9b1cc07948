package driver

import "github.com/vramseal/vramseal/cuda"

var _ cuda.Pointers = (*Device)(nil)

// DevicePointer returns allocation h's device address.
func (d *Device) DevicePointer(h cuda.Handle) (uintptr, error) {
	a, err := d.lookup("device pointer", h, 0, 0)
	if err != nil {
		return 0, err
	}
	var p uintptr
	err = a.Shared(d.table.Name(), "device pointer", h, func(ptr devicePtr) error {
		p = uintptr(ptr)
		return nil
	})
	return p, err
}
