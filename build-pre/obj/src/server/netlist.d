build-pre/obj/src/server/netlist.o: src/server/netlist.c \
 src/server/server.h src/server/../conf/conf.h \
 src/server/../deliver/deliver.h src/server/../queue/queue.h \
 src/server/../queue/../smtp/smtp.h \
 src/server/../queue/../smtp/../addr/addr.h \
 src/server/../queue/../smtp/../util/util.h \
 src/server/../queue/../util/util.h src/server/../table/table.h \
 src/server/../table/../addr/addr.h src/server/../table/../conf/conf.h \
 src/server/../util/clientkey.h src/server/../util/util.h
src/server/server.h:
src/server/../conf/conf.h:
src/server/../deliver/deliver.h:
src/server/../queue/queue.h:
src/server/../queue/../smtp/smtp.h:
src/server/../queue/../smtp/../addr/addr.h:
src/server/../queue/../smtp/../util/util.h:
src/server/../queue/../util/util.h:
src/server/../table/table.h:
src/server/../table/../addr/addr.h:
src/server/../table/../conf/conf.h:
src/server/../util/clientkey.h:
src/server/../util/util.h:
