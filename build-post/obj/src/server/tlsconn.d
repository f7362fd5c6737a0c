build-post/obj/src/server/tlsconn.o: src/server/tlsconn.c \
 src/server/../tls/tls.h src/util/util.h src/server/conn.h \
 src/server/../auth/auth.h src/server/../smtp/smtp.h \
 src/server/../smtp/../addr/addr.h src/server/../smtp/../util/util.h \
 src/server/server.h src/server/../conf/conf.h \
 src/server/../deliver/deliver.h src/server/../queue/queue.h \
 src/server/../queue/../smtp/smtp.h src/server/../queue/../util/util.h \
 src/server/../table/table.h src/server/../table/../addr/addr.h \
 src/server/../table/../conf/conf.h src/server/../util/clientkey.h \
 src/server/../util/util.h
src/server/../tls/tls.h:
src/util/util.h:
src/server/conn.h:
src/server/../auth/auth.h:
src/server/../smtp/smtp.h:
src/server/../smtp/../addr/addr.h:
src/server/../smtp/../util/util.h:
src/server/server.h:
src/server/../conf/conf.h:
src/server/../deliver/deliver.h:
src/server/../queue/queue.h:
src/server/../queue/../smtp/smtp.h:
src/server/../queue/../util/util.h:
src/server/../table/table.h:
src/server/../table/../addr/addr.h:
src/server/../table/../conf/conf.h:
src/server/../util/clientkey.h:
src/server/../util/util.h:
