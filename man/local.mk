# Manual pages (section 3), installed by make install.
#
# One page per family of functions, plus ctx.3 (the overview); every other
# exported function, and CTX_AUTO, has a one-line page that sources its
# family page (.so man3/FAMILY.3), so that "man ctx_write" works.
# man/check-man.sh (a test) fails when an exported ctx_ function of the
# built library has no page listed here, or a page does not format cleanly.

# The overview and the family pages.
dist_man3_MANS = \
	man/ctx.3 \
	man/ctx.hpp.3 \
	man/ctx_with_cancel.3 \
	man/ctx_err.3 \
	man/ctx_done_fd.3 \
	man/ctx_with_signals.3 \
	man/ctx_wait.3 \
	man/ctx_read.3 \
	man/ctx_accept.3 \
	man/ctx_waitpid.3 \
	man/ctx_thread_create.3 \
	man/ctx_wg_new.3 \
	man/ctx_group_new.3 \
	man/ctx_chan_new.3 \
	man/ctx_after_func.3 \
	man/ctx_backend.3 \
	man/ctx_dump.3 \
	man/ctx_fsync.3 \
	man/ctx_ppoll.3 \
	man/ctx_waitid.3 \
	man/ctx_open.3 \
	man/ctx_flock.3 \
	man/ctx_proc_spawn.3 \
	man/ctx_with_hangup.3 \
	man/ctx_readv.3 \
	man/ctx_recvfrom.3 \
	man/ctx_sendfile.3

# Aliases: each holds only ".so man3/FAMILY.3".
# aliases of man/ctx_with_cancel.3
dist_man3_MANS += \
	man/ctx_background.3 \
	man/ctx_todo.3 \
	man/ctx_with_deadline.3 \
	man/ctx_with_timeout.3 \
	man/ctx_with_deadline_cause.3 \
	man/ctx_with_timeout_cause.3 \
	man/ctx_with_value.3 \
	man/ctx_without_cancel.3 \
	man/ctx_cancel.3 \
	man/ctx_cancel_cause.3 \
	man/ctx_ref.3 \
	man/ctx_unref.3 \
	man/ctx_release.3 \
	man/CTX_AUTO.3 \
	man/ctx_set_site.3
# aliases of man/ctx_err.3
dist_man3_MANS += \
	man/ctx_cause.3 \
	man/ctx_deadline.3 \
	man/ctx_value.3 \
	man/ctx_can_end.3 \
	man/ctx_strerror.3 \
	man/ctx_format.3 \
	man/ctx_now.3
# aliases of man/ctx_wait.3
dist_man3_MANS += \
	man/ctx_sleep.3 \
	man/ctx_poll.3
# aliases of man/ctx_read.3
dist_man3_MANS += \
	man/ctx_write.3 \
	man/ctx_recv.3 \
	man/ctx_send.3
# aliases of man/ctx_accept.3
dist_man3_MANS += \
	man/ctx_connect.3
# aliases of man/ctx_thread_create.3
dist_man3_MANS += \
	man/ctx_thread_create_attr.3 \
	man/ctx_thread_join.3 \
	man/ctx_thread_detach.3
# aliases of man/ctx_wg_new.3
dist_man3_MANS += \
	man/ctx_wg_add.3 \
	man/ctx_wg_done.3 \
	man/ctx_wg_wait.3 \
	man/ctx_wg_free.3
# aliases of man/ctx_group_new.3
dist_man3_MANS += \
	man/ctx_group_ctx.3 \
	man/ctx_group_set_limit.3 \
	man/ctx_group_go.3 \
	man/ctx_group_wait.3 \
	man/ctx_group_free.3
# aliases of man/ctx_chan_new.3
dist_man3_MANS += \
	man/ctx_chan_send.3 \
	man/ctx_chan_recv.3 \
	man/ctx_chan_close.3 \
	man/ctx_chan_free.3
# aliases of man/ctx_after_func.3
dist_man3_MANS += \
	man/ctx_after_stop.3
# aliases of man/ctx_fsync.3 (issue 12)
dist_man3_MANS += \
	man/ctx_fdatasync.3
# aliases of man/ctx_ppoll.3
dist_man3_MANS += \
	man/ctx_epoll_wait.3 \
	man/ctx_sigwait.3 \
	man/ctx_sleep_until.3
# aliases of man/ctx_flock.3
dist_man3_MANS += \
	man/ctx_lock_range.3

# Waiting on anything (issue 13): condition variables, semaphores,
# select and the non-blocking channel calls, the rest of errgroup.
dist_man3_MANS += \
	man/ctx_cond_wait.3 \
	man/ctx_sem_new.3 \
	man/ctx_select.3 \
	man/ctx_group_try_go.3
# aliases of man/ctx_cond_wait.3
dist_man3_MANS += \
	man/ctx_cond_wait_until.3 \
	man/ctx_cond_signal.3 \
	man/ctx_cond_broadcast.3
# aliases of man/ctx_sem_new.3
dist_man3_MANS += \
	man/ctx_sem_acquire.3 \
	man/ctx_sem_try_acquire.3 \
	man/ctx_sem_release.3 \
	man/ctx_sem_free.3
# aliases of man/ctx_select.3
dist_man3_MANS += \
	man/ctx_chan_try_send.3 \
	man/ctx_chan_try_recv.3 \
	man/ctx_chan_len.3 \
	man/ctx_chan_cap.3
# aliases of man/ctx_group_try_go.3
dist_man3_MANS += \
	man/ctx_group_set_attr.3 \
	man/ctx_wg_go.3
# aliases of man/ctx_proc_spawn.3
dist_man3_MANS += \
	man/ctx_proc_pid.3 \
	man/ctx_proc_stdio.3 \
	man/ctx_proc_close.3 \
	man/ctx_proc_signal.3 \
	man/ctx_proc_wait.3 \
	man/ctx_proc_free.3 \
	man/ctx_proc_output.3

TESTS += man/check-man.sh
EXTRA_DIST += man/check-man.sh
# aliases of man/ctx_with_hangup.3
dist_man3_MANS += \
	man/ctx_with_idle.3 \
	man/ctx_touch.3 \
	man/ctx_signo.3 \
	man/ctx_cancel_msg.3 \
	man/ctx_cause_msg.3
# Outgoing calls (issue 15): names and dialing.
dist_man3_MANS += \
	man/ctx_getaddrinfo.3 \
	man/ctx_dial.3 \
	man/ctx_freeaddrinfo.3
# aliases of man/ctx_readv.3 (issue 12)
dist_man3_MANS += \
	man/ctx_writev.3 \
	man/ctx_pread.3 \
	man/ctx_pwrite.3 \
	man/ctx_preadv.3 \
	man/ctx_pwritev.3
# aliases of man/ctx_recvfrom.3
dist_man3_MANS += \
	man/ctx_sendto.3 \
	man/ctx_recvmsg.3 \
	man/ctx_sendmsg.3 \
	man/ctx_recvmmsg.3 \
	man/ctx_sendmmsg.3
# aliases of man/ctx_sendfile.3
dist_man3_MANS += \
	man/ctx_splice.3 \
	man/ctx_copy_file_range.3
# Connections: listening, copying, proxying, buffered connections.
dist_man3_MANS += \
	man/ctx_listen.3 \
	man/ctx_copy.3 \
	man/ctx_conn_new.3
# aliases of man/ctx_listen.3, man/ctx_copy.3 and man/ctx_conn_new.3
dist_man3_MANS += \
	man/ctx_split_host_port.3 \
	man/ctx_proxy.3 \
	man/ctx_conn_read.3 \
	man/ctx_conn_read_full.3 \
	man/ctx_conn_read_line.3 \
	man/ctx_conn_write.3 \
	man/ctx_conn_fd.3 \
	man/ctx_conn_close.3
# Processes and services (issue 27): contexts across processes, a
# process's exit, deadlines on the wire.
dist_man3_MANS += \
	man/ctx_with_pidfd.3 \
	man/ctx_inherited.3 \
	man/ctx_format_timeout.3
# aliases of man/ctx_format_timeout.3
dist_man3_MANS += \
	man/ctx_with_timeout_header.3
# Composing contexts (issue 23).
dist_man3_MANS += \
	man/ctx_set_deadline.3 \
	man/ctx_with_merge.3 \
	man/ctx_with_grace.3 \
	man/ctx_origin.3 \
	man/ctx_signal_notify.3 \
	man/ctx_after_func_inline.3
# aliases of man/ctx_signal_notify.3 and man/ctx_after_func_inline.3
dist_man3_MANS += \
	man/ctx_signal_stop.3 \
	man/ctx_after_stop_wait.3
# Time that tests control (issue 29).
dist_man3_MANS += \
	man/ctx_clock_manual.3
# aliases of man/ctx_clock_manual.3
dist_man3_MANS += \
	man/ctx_clock_advance.3 \
	man/ctx_clock_wait_idle.3 \
	man/ctx_clock_auto.3
