// libfreeipmi (Debian libfreeipmi-dev). FIID templates are extern arrays of incomplete type, which
// Swift cannot import; these helpers create the response objects Anvil uses.
#include <freeipmi/freeipmi.h>

static inline fiid_obj_t anvil_fiid_get_chassis_status_rs(void) { return fiid_obj_create(tmpl_cmd_get_chassis_status_rs); }
static inline fiid_obj_t anvil_fiid_chassis_control_rs(void) { return fiid_obj_create(tmpl_cmd_chassis_control_rs); }
static inline fiid_obj_t anvil_fiid_set_system_boot_options_rs(void) { return fiid_obj_create(tmpl_cmd_set_system_boot_options_rs); }
static inline fiid_obj_t anvil_fiid_get_device_id_rs(void) { return fiid_obj_create(tmpl_cmd_get_device_id_rs); }
