build-post/obj/src/deliver/remote.o: src/deliver/remote.c \
 src/deliver/../mime/mime.h src/util/util.h src/deliver/../tls/tls.h \
 src/deliver/../util/util.h src/deliver/dest.h src/deliver/dns.h \
 src/deliver/remote.h src/deliver/../smtp/smtp.h \
 src/deliver/../smtp/../addr/addr.h src/deliver/../smtp/../util/util.h \
 src/deliver/remote_int.h src/deliver/job.h src/deliver/target.h
src/deliver/../mime/mime.h:
src/util/util.h:
src/deliver/../tls/tls.h:
src/deliver/../util/util.h:
src/deliver/dest.h:
src/deliver/dns.h:
src/deliver/remote.h:
src/deliver/../smtp/smtp.h:
src/deliver/../smtp/../addr/addr.h:
src/deliver/../smtp/../util/util.h:
src/deliver/remote_int.h:
src/deliver/job.h:
src/deliver/target.h:
