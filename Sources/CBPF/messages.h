// libbpf's messages, kept for error lines (loader.c); shared by the CBPF sources.
#ifndef PYTAP_MESSAGES_H
#define PYTAP_MESSAGES_H
/// Routes libbpf's messages into a buffer (printed only with PYTAP_BPF_DEBUG set) and clears it.
void pytap_bpf_capture_messages(void);
/// libbpf's last warning or error line ("" if none).
const char *pytap_bpf_last_message(void);
#endif
