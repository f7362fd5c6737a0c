build-pre/obj/src/server/qmgr.o: src/server/qmgr.c \
 src/server/../deliver/remote.h src/server/../deliver/../smtp/smtp.h \
 src/server/../deliver/../smtp/../addr/addr.h \
 src/server/../deliver/../smtp/../util/util.h src/server/../deliver/dns.h \
 src/server/../queue/bounce.h src/util/util.h src/server/../queue/retry.h \
 src/server/../tls/tls.h src/server/dsnlimit.h src/server/../conf/conf.h \
 src/server/server.h src/server/../deliver/deliver.h \
 src/server/../queue/queue.h src/server/../queue/../smtp/smtp.h \
 src/server/../queue/../util/util.h src/server/../table/table.h \
 src/server/../table/../addr/addr.h src/server/../table/../conf/conf.h \
 src/server/../util/clientkey.h src/server/../util/util.h
src/server/../deliver/remote.h:
src/server/../deliver/../smtp/smtp.h:
src/server/../deliver/../smtp/../addr/addr.h:
src/server/../deliver/../smtp/../util/util.h:
src/server/../deliver/dns.h:
src/server/../queue/bounce.h:
src/util/util.h:
src/server/../queue/retry.h:
src/server/../tls/tls.h:
src/server/dsnlimit.h:
src/server/../conf/conf.h:
src/server/server.h:
src/server/../deliver/deliver.h:
src/server/../queue/queue.h:
src/server/../queue/../smtp/smtp.h:
src/server/../queue/../util/util.h:
src/server/../table/table.h:
src/server/../table/../addr/addr.h:
src/server/../table/../conf/conf.h:
src/server/../util/clientkey.h:
src/server/../util/util.h:
