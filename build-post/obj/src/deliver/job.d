build-post/obj/src/deliver/job.o: src/deliver/job.c \
 src/deliver/../mime/mime.h src/util/util.h src/deliver/../util/util.h \
 src/deliver/job.h src/deliver/../smtp/smtp.h \
 src/deliver/../smtp/../addr/addr.h src/deliver/../smtp/../util/util.h \
 src/deliver/dns.h src/deliver/remote.h src/deliver/remote_int.h
src/deliver/../mime/mime.h:
src/util/util.h:
src/deliver/../util/util.h:
src/deliver/job.h:
src/deliver/../smtp/smtp.h:
src/deliver/../smtp/../addr/addr.h:
src/deliver/../smtp/../util/util.h:
src/deliver/dns.h:
src/deliver/remote.h:
src/deliver/remote_int.h:
