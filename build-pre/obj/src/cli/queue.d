build-pre/obj/src/cli/queue.o: src/cli/queue.c src/cli/cli.h \
 src/addr/addr.h src/conf/conf.h src/smtp/smtp.h src/smtp/../addr/addr.h \
 src/smtp/../util/util.h src/util/util.h src/queue/queue.h \
 src/queue/../smtp/smtp.h src/queue/../util/util.h
src/cli/cli.h:
src/addr/addr.h:
src/conf/conf.h:
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
src/util/util.h:
src/queue/queue.h:
src/queue/../smtp/smtp.h:
src/queue/../util/util.h:
